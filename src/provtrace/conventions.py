"""Every attribute name, step kind, link type and rule code provtrace emits or checks.

OTel GenAI and MCP names are plain strings here on purpose: the enum classes of
opentelemetry-semantic-conventions warn on value lookup, and the names are pinned to the
v1.41.1 text so that a renaming upstream cannot silently change what provtrace records.
"""

from __future__ import annotations

from typing import Final

SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.41.1"
INSTRUMENTATION_NAME: Final = "provtrace"

# --- steps -----------------------------------------------------------------------------------
STEP_DECISION: Final = "decision"
STEP_LLM_CALL: Final = "llm_call"
STEP_TOOL_CALL: Final = "tool_call"
STEP_SECRET_FETCH: Final = "secret_fetch"
STEP_POLICY_CHECK: Final = "policy_check"
STEP_APPROVAL: Final = "approval"
STEP_ACTION: Final = "action"
STEP_VERIFICATION: Final = "verification"
STEPS: Final = (
    STEP_DECISION,
    STEP_LLM_CALL,
    STEP_TOOL_CALL,
    STEP_SECRET_FETCH,
    STEP_POLICY_CHECK,
    STEP_APPROVAL,
    STEP_ACTION,
    STEP_VERIFICATION,
)

# --- common provenance attributes ------------------------------------------------------------
STEP: Final = "provenance.step"
DECISION_ID: Final = "provenance.decision.id"
DECISION_NAME: Final = "provenance.decision.name"
DECISION_TRIGGER: Final = "provenance.decision.trigger"
ACTOR_ID: Final = "provenance.actor.id"
NHI_ID: Final = "provenance.nhi.id"
OUTCOME: Final = "provenance.outcome"
CAPTURE_MODE: Final = "provenance.content.capture"
CONTENT_TRUNCATED: Final = "provenance.content.truncated"
CONTENT_KEYED: Final = "provenance.content.keyed"  # digest attributes that are HMACs (see keyed.py)
CONTENT_KEY_ID: Final = "provenance.content.key_id"
LINKS_MIRROR: Final = "provenance.links"
UPSTREAM_SAMPLED: Final = "provenance.upstream.sampled"

INPUT_SHA256: Final = "provenance.input.sha256"
OUTPUT_SHA256: Final = "provenance.output.sha256"
INPUT_CONTENT: Final = "provenance.input.content"
OUTPUT_CONTENT: Final = "provenance.output.content"

OUTCOME_SUCCESS: Final = "success"
OUTCOME_FAILURE: Final = "failure"
OUTCOME_REFUSED: Final = "refused"

# --- secret_fetch ----------------------------------------------------------------------------
SECRET_STORE: Final = "provenance.secret.store"
SECRET_REF: Final = "provenance.secret.ref"
SECRET_VERSION: Final = "provenance.secret.version"
# What a secret store said about a fetch (secret-store instrumentations; never the value).
SECRET_OPERATION: Final = "provenance.secret.operation"  # e.g. kv.read, auth.login, GetSecretValue
SECRET_ENGINE: Final = "provenance.secret.engine"  # e.g. kv-v2, database, secretsmanager, sts
SECRET_MOUNT: Final = "provenance.secret.mount"  # a Vault mount point
SECRET_ARN: Final = "provenance.secret.arn"
SECRET_VERSION_STAGES: Final = "provenance.secret.version_stages"
SECRET_TYPE: Final = "provenance.secret.type"  # an SSM parameter's type
SECRET_REQUEST_ID: Final = "provenance.secret.request_id"  # the store's own id of the request
SECRET_RETRIES: Final = "provenance.secret.retries"
SECRET_REFS: Final = "provenance.secret.refs"  # a batch fetch: the references it returned
SECRET_ERRORS: Final = "provenance.secret.errors"  # a batch fetch: `ref:error` per failed item
LEASE_ID: Final = "provenance.lease.id"
LEASE_DURATION: Final = "provenance.lease.duration_s"
LEASE_RENEWABLE: Final = "provenance.lease.renewable"

# --- the identity a credential belongs to (looked up once per credential, never the secret) ---
NHI_ACCESSOR: Final = "provenance.nhi.accessor"  # a Vault token's accessor
NHI_ENTITY_ID: Final = "provenance.nhi.entity_id"
NHI_POLICIES: Final = "provenance.nhi.policies"
NHI_AUTH_PATH: Final = "provenance.nhi.auth_path"  # where a Vault token was issued
NHI_ARN: Final = "provenance.nhi.arn"  # the AWS caller identity
NHI_ACCOUNT: Final = "provenance.nhi.account"
NHI_ACCESS_KEY_ID: Final = "provenance.nhi.access_key_id"
NHI_CREDENTIAL_SOURCE: Final = "provenance.nhi.credential_source"  # botocore's credentials method
NHI_LOOKUP_ERROR: Final = "provenance.nhi.lookup_error"  # why the identity could not be looked up

# --- credential issuance: a secret_fetch whose secret is a newly issued credential -------------
CREDENTIAL_METHOD: Final = "provenance.credential.method"  # approle, jwt, kubernetes, AssumeRole, ...
CREDENTIAL_ROLE: Final = "provenance.credential.role"
CREDENTIAL_SESSION_NAME: Final = "provenance.credential.session_name"
CREDENTIAL_ACCESSOR: Final = "provenance.credential.accessor"
CREDENTIAL_ENTITY_ID: Final = "provenance.credential.entity_id"
CREDENTIAL_POLICIES: Final = "provenance.credential.policies"
CREDENTIAL_TOKEN_TYPE: Final = "provenance.credential.token_type"
CREDENTIAL_ACCESS_KEY_ID: Final = "provenance.credential.access_key_id"
CREDENTIAL_ARN: Final = "provenance.credential.arn"
CREDENTIAL_EXPIRES_AT: Final = "provenance.credential.expires_at"

# --- policy_check ----------------------------------------------------------------------------
POLICY_ID: Final = "provenance.policy.id"
POLICY_VERSION: Final = "provenance.policy.version"
POLICY_ENGINE: Final = "provenance.policy.engine"
POLICY_DECISION: Final = "provenance.policy.decision"
POLICY_REASON: Final = "provenance.policy.reason"
POLICY_ACTIONS: Final = "provenance.policy.actions"  # action types the check authorises
POLICY_ALLOW: Final = "allow"
POLICY_DENY: Final = "deny"

# --- approval --------------------------------------------------------------------------------
APPROVAL_APPROVER_ID: Final = "provenance.approval.approver.id"
APPROVAL_DECISION: Final = "provenance.approval.decision"
APPROVAL_PARAMS_SHA256: Final = "provenance.approval.params.sha256"
APPROVAL_NONCE: Final = "provenance.approval.nonce"
APPROVAL_EXPIRES_AT: Final = "provenance.approval.expires_at"
APPROVAL_METHOD: Final = "provenance.approval.method"
APPROVAL_TICKET: Final = "provenance.approval.ticket"
APPROVAL_REASON: Final = "provenance.approval.reason"
APPROVAL_APPROVED: Final = "approved"
APPROVAL_REJECTED: Final = "rejected"

# --- action ----------------------------------------------------------------------------------
ACTION_TYPE: Final = "provenance.action.type"
ACTION_TARGET: Final = "provenance.action.target"
ACTION_PRIVILEGED: Final = "provenance.action.privileged"
ACTION_PARAMS_SHA256: Final = "provenance.action.params.sha256"
ACTION_PARAMS_CONTENT: Final = "provenance.action.params.content"
ACTION_REQUIRE: Final = "provenance.action.require"
PARAMS_INEXACT: Final = "provenance.params.inexact"  # why parameters could not be bound exactly
CHANGE_BEFORE_SHA256: Final = "provenance.change.before.sha256"
CHANGE_AFTER_SHA256: Final = "provenance.change.after.sha256"
CHANGE_BEFORE_CONTENT: Final = "provenance.change.before.content"
CHANGE_AFTER_CONTENT: Final = "provenance.change.after.content"
GUARD_VIOLATIONS: Final = "provenance.guard.violations"
# Secret changes (secret-store instrumentations): the version replaced and the one written.
CHANGE_BEFORE_VERSION: Final = "provenance.change.before.version"
CHANGE_AFTER_VERSION: Final = "provenance.change.after.version"
ACTION_SECRET_WRITE: Final = "secret.write"
ACTION_SECRET_ROTATE: Final = "secret.rotate"
ACTION_SECRET_STAGE: Final = "secret.stage"
ACTION_SECRET_DELETE: Final = "secret.delete"
ACTION_SECRET_RESTORE: Final = "secret.restore"

# --- verification ----------------------------------------------------------------------------
VERIFICATION_RESULT: Final = "provenance.verification.result"
VERIFICATION_METHOD: Final = "provenance.verification.method"
VERIFICATION_DETAIL: Final = "provenance.verification.detail"
VERIFICATION_PASS: Final = "pass"
VERIFICATION_FAIL: Final = "fail"

# --- causal links ----------------------------------------------------------------------------
LINK_TYPE: Final = "provenance.link.type"
LINK_AUTHORIZED_BY: Final = "authorized_by"
LINK_APPROVED_BY: Final = "approved_by"
LINK_USED_SECRET: Final = "used_secret"
LINK_TRIGGERED_BY: Final = "triggered_by"
LINK_VERIFIES: Final = "verifies"
LINK_WRITTEN_BY: Final = "written_by"  # secret fetch -> the action that wrote the version it read
LINK_TYPES: Final = (
    LINK_AUTHORIZED_BY,
    LINK_APPROVED_BY,
    LINK_USED_SECRET,
    LINK_TRIGGERED_BY,
    LINK_VERIFIES,
    LINK_WRITTEN_BY,
)

# --- OTel GenAI / MCP / general semantic conventions (v1.41.1 names) -------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_OPERATION_CHAT: Final = "chat"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
# An llm_call whose streamed answer was closed, abandoned or broken off before its end: the output
# digest and content cover what reached the caller.
OUTPUT_PARTIAL: Final = "provenance.output.partial"
GEN_AI_OPERATION_EXECUTE_TOOL: Final = "execute_tool"

MCP_METHOD_NAME: Final = "mcp.method.name"
MCP_PROTOCOL_VERSION: Final = "mcp.protocol.version"
MCP_RESOURCE_URI: Final = "mcp.resource.uri"
MCP_SESSION_ID: Final = "mcp.session.id"
JSONRPC_REQUEST_ID: Final = "jsonrpc.request.id"
NETWORK_TRANSPORT: Final = "network.transport"
NETWORK_PROTOCOL_NAME: Final = "network.protocol.name"
ERROR_TYPE: Final = "error.type"
CLOUD_REGION: Final = "cloud.region"
SERVICE_NAME: Final = "service.name"
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"
RPC_RESPONSE_STATUS_CODE: Final = "rpc.response.status_code"
ERROR_TYPE_TOOL_ERROR: Final = "tool_error"  # error.type of a tool result flagged isError (MCP)

# --- claims: what a peer says about itself or its caller, recorded but never trusted ----------
# (MCP clientInfo/serverInfo and provtrace's own _meta keys are self-reported by the peer.)
CLAIM_PARENT: Final = "provenance.claim.parent"  # the traceparent a remote caller sent
CLAIM_ACTOR_ID: Final = "provenance.claim.actor.id"
CLAIM_NHI_ID: Final = "provenance.claim.nhi.id"
CLAIM_CLIENT_NAME: Final = "provenance.claim.client.name"
CLAIM_CLIENT_VERSION: Final = "provenance.claim.client.version"
CLAIM_SERVER_NAME: Final = "provenance.claim.server.name"
CLAIM_SERVER_VERSION: Final = "provenance.claim.server.version"

# --- seals and violation records -------------------------------------------------------------
SEAL_SPAN_NAME: Final = "provenance.seal"
SEAL_STREAM: Final = "provenance.seal.stream"
SEAL_SEQ: Final = "provenance.seal.seq"
SEAL_PREV: Final = "provenance.seal.prev"
SEAL_SPANS: Final = "provenance.seal.spans"
SEAL_WITHHELD: Final = "provenance.seal.withheld"
SEAL_COMPLETENESS: Final = "provenance.seal.completeness"
SEAL_VIOLATIONS: Final = "provenance.seal.violations"
SEAL_DIGEST: Final = "provenance.seal.digest"
SEAL_SIGNATURE: Final = "provenance.seal.signature"
SEAL_KEY_ID: Final = "provenance.seal.key_id"
SEAL_REASON: Final = "provenance.seal.reason"
SEAL_HEARTBEAT_INTERVAL: Final = "provenance.seal.heartbeat_interval_s"
SEAL_OPEN_SPANS: Final = "provenance.seal.open_spans"
# On a seal of recovered evidence: the stream whose process died, and the last step it recorded
# of the decision ("name (span id)", the latest to end, or the latest to start when none ended).
SEAL_RECOVERED_FROM: Final = "provenance.seal.recovered_from"
SEAL_LAST_STEP: Final = "provenance.seal.last_step"
# The stream's RFC 6962 Merkle log of span digests: its size and root (hex) after this seal.
SEAL_TREE_SIZE: Final = "provenance.seal.tree_size"
SEAL_TREE_ROOT: Final = "provenance.seal.tree_root"
# The monotonic clock when the seal was issued, and the process run it belongs to: readings are
# compared only within one run (see ``provtrace.clock``). Absent from seals written before.
SEAL_MONOTONIC: Final = "provenance.seal.monotonic_ns"
SEAL_CLOCK_RUN: Final = "provenance.seal.clock_run"

# The same reading on the steps whose order and age authorise an action (policy check, approval,
# action), so the guard and the rules compare them by elapsed time, not by a wall clock that may
# have been stepped; and, on any span the wall clock ended before it started, by how much.
CLOCK_RUN: Final = "provenance.clock.run"
CLOCK_MONOTONIC: Final = "provenance.clock.monotonic_ns"
CLOCK_END_BEFORE_START: Final = "provenance.clock.end_before_start_ns"

# Self-authenticating anchors beside the seals: the checkpoint of a seal (a C2SP signed note) and
# an RFC 3161 time-stamp token over that note.
CHECKPOINT_SPAN_NAME: Final = "provenance.checkpoint"
CHECKPOINT_NOTE: Final = "provenance.checkpoint.note"
TIMESTAMP_SPAN_NAME: Final = "provenance.timestamp"
TIMESTAMP_TOKEN: Final = "provenance.timestamp.token"

COMPLETENESS_COMPLETE: Final = "complete"
COMPLETENESS_INCOMPLETE: Final = "incomplete"
COMPLETENESS_UNCHECKED: Final = "unchecked"

SEAL_REASON_ROOT_ENDED: Final = "root_ended"
SEAL_REASON_STRAGGLERS: Final = "stragglers"
SEAL_REASON_TIMEOUT: Final = "timeout"
SEAL_REASON_MEMORY_BOUND: Final = "memory_bound"
SEAL_REASON_SHUTDOWN: Final = "shutdown"  # a segment flushed because the process shut down
SEAL_REASON_CLOSE: Final = "close"  # the stream's last seal, with no spans: nothing follows
SEAL_REASON_FLUSH: Final = "flush"
SEAL_REASON_HEARTBEAT: Final = "heartbeat"
SEAL_REASON_RELEASE: Final = "release"
# Sealed by the process that adopted a dead process's spool, from its progress log: the steps of a
# decision that started and never finished, and spans that ended but were never spooled.
SEAL_REASON_UNFINISHED: Final = "unfinished"
SEAL_REASON_RECOVERED: Final = "recovered"

VIOLATION_SPAN_NAME: Final = "provenance.violation"
VIOLATION_CODES: Final = "provenance.violation.codes"
VIOLATION_DETAILS: Final = "provenance.violation.details"
VIOLATION_QUARANTINE_ID: Final = "provenance.violation.quarantine_id"
VIOLATION_SPAN_COUNT: Final = "provenance.violation.span_count"

RELEASE_SPAN_NAME: Final = "provenance.release"
RELEASE_BY: Final = "provenance.release.by"
RELEASE_REASON: Final = "provenance.release.reason"
RELEASE_QUARANTINE_ID: Final = "provenance.release.quarantine_id"

# --- completeness rule codes -----------------------------------------------------------------
RULE_STRUCT_ROOT: Final = "STRUCT-ROOT"
RULE_STRUCT_ORPHAN: Final = "STRUCT-ORPHAN"
RULE_ATTR_MISSING: Final = "ATTR-MISSING"
RULE_ATTR_DROPPED: Final = "ATTR-DROPPED"
RULE_LINK_AUTHZ: Final = "LINK-AUTHZ"
RULE_LINK_APPROVAL: Final = "LINK-APPROVAL"
RULE_SOD: Final = "SOD"
RULE_APPROVAL_BINDING: Final = "APPROVAL-BINDING"
RULE_SECRET_LEAK: Final = "SECRET-LEAK"
RULE_UNFINISHED: Final = "UNFINISHED"
RULE_VERIFY_MISSING: Final = "VERIFY-MISSING"

PROFILE_BASELINE: Final = "baseline"
PROFILE_AUDIT: Final = "audit"

MODE_ENFORCE: Final = "enforce"
MODE_ANNOTATE: Final = "annotate"
MODE_OFF: Final = "off"
COMPLETENESS_MODES: Final = (MODE_ENFORCE, MODE_ANNOTATE, MODE_OFF)

CAPTURE_NONE: Final = "none"
CAPTURE_DIGEST: Final = "digest"
CAPTURE_REDACTED: Final = "redacted"
CAPTURE_FULL: Final = "full"
CAPTURE_MODES: Final = (CAPTURE_NONE, CAPTURE_DIGEST, CAPTURE_REDACTED, CAPTURE_FULL)

# Required attributes per step, besides the common ones (DESIGN.md, Provenance conventions).
REQUIRED_ATTRIBUTES: Final[dict[str, tuple[str, ...]]] = {
    STEP_DECISION: (DECISION_NAME, DECISION_TRIGGER),
    STEP_LLM_CALL: (
        GEN_AI_OPERATION_NAME,
        GEN_AI_PROVIDER_NAME,
        GEN_AI_REQUEST_MODEL,
        INPUT_SHA256,
        OUTPUT_SHA256,
    ),
    STEP_TOOL_CALL: (GEN_AI_TOOL_NAME, INPUT_SHA256, OUTPUT_SHA256),
    STEP_SECRET_FETCH: (SECRET_STORE, SECRET_REF, NHI_ID),
    STEP_POLICY_CHECK: (POLICY_ID, POLICY_DECISION, INPUT_SHA256),
    STEP_APPROVAL: (
        APPROVAL_APPROVER_ID,
        APPROVAL_DECISION,
        APPROVAL_PARAMS_SHA256,
        APPROVAL_NONCE,
        APPROVAL_EXPIRES_AT,
    ),
    STEP_ACTION: (
        ACTION_TYPE,
        ACTION_TARGET,
        ACTION_PRIVILEGED,
        ACTION_PARAMS_SHA256,
        OUTCOME,
    ),
    STEP_VERIFICATION: (VERIFICATION_RESULT,),
}
COMMON_REQUIRED: Final = (STEP, DECISION_ID, ACTOR_ID)
# Required besides, under the ``audit`` profile.
AUDIT_REQUIRED_ATTRIBUTES: Final[dict[str, tuple[str, ...]]] = {
    STEP_ACTION: (NHI_ID,),
    STEP_POLICY_CHECK: (POLICY_VERSION,),
}

# Ids, digests, times, versions and enums: a tainted value shorter than
# ``provtrace.secrets_registry.MIN_SECRET_LENGTH`` never scrubs these (a fetched ``7`` or ``2026``
# would otherwise destroy ids, digests and approval expiry times); longer secrets still do.
STRUCTURAL_ATTRIBUTES: Final = frozenset(
    {
        STEP,
        DECISION_ID,
        ACTOR_ID,
        NHI_ID,
        OUTCOME,
        CAPTURE_MODE,
        CONTENT_TRUNCATED,
        LINKS_MIRROR,
        UPSTREAM_SAMPLED,
        INPUT_SHA256,
        OUTPUT_SHA256,
        SECRET_STORE,
        SECRET_REF,
        SECRET_VERSION,
        POLICY_ID,
        POLICY_VERSION,
        POLICY_ENGINE,
        POLICY_DECISION,
        APPROVAL_APPROVER_ID,
        APPROVAL_DECISION,
        APPROVAL_PARAMS_SHA256,
        APPROVAL_NONCE,
        APPROVAL_EXPIRES_AT,
        APPROVAL_METHOD,
        APPROVAL_TICKET,
        CLOCK_RUN,
        CLOCK_MONOTONIC,
        CLOCK_END_BEFORE_START,
        ACTION_TYPE,
        ACTION_TARGET,
        ACTION_PRIVILEGED,
        ACTION_PARAMS_SHA256,
        ACTION_REQUIRE,
        CHANGE_BEFORE_SHA256,
        CHANGE_AFTER_SHA256,
        GUARD_VIOLATIONS,
        VERIFICATION_RESULT,
        VERIFICATION_METHOD,
        LINK_TYPE,
        GEN_AI_OPERATION_NAME,
        GEN_AI_PROVIDER_NAME,
        GEN_AI_REQUEST_MODEL,
        GEN_AI_RESPONSE_MODEL,
        GEN_AI_RESPONSE_ID,
        GEN_AI_RESPONSE_FINISH_REASONS,
        GEN_AI_USAGE_INPUT_TOKENS,
        GEN_AI_USAGE_OUTPUT_TOKENS,
        GEN_AI_TOOL_CALL_ID,
        MCP_METHOD_NAME,
        MCP_PROTOCOL_VERSION,
        MCP_SESSION_ID,
        JSONRPC_REQUEST_ID,
        NETWORK_TRANSPORT,
        NETWORK_PROTOCOL_NAME,
        RPC_RESPONSE_STATUS_CODE,
        SEAL_STREAM,
        SEAL_SEQ,
        SEAL_PREV,
        SEAL_SPANS,
        SEAL_WITHHELD,
        SEAL_COMPLETENESS,
        SEAL_VIOLATIONS,
        SEAL_DIGEST,
        SEAL_SIGNATURE,
        SEAL_KEY_ID,
        SEAL_REASON,
        SEAL_HEARTBEAT_INTERVAL,
        SEAL_OPEN_SPANS,
        SEAL_RECOVERED_FROM,
        VIOLATION_CODES,
        VIOLATION_QUARANTINE_ID,
        VIOLATION_SPAN_COUNT,
        RELEASE_QUARANTINE_ID,
    }
)
CONTENT_DIGESTS: Final = (INPUT_SHA256, OUTPUT_SHA256)
