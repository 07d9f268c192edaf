"""Generate docs/conventions.md from provtrace.conventions, so that the page cannot drift.

Names, step kinds, required attributes (per step and per profile), link types, rule codes and
enumerated values come from the constants module; this file adds what a constant cannot say: each
attribute's type, where it is written when it is not required, and what it means. An attribute
constant without an entry here, or an entry naming no constant, is an error.

    python scripts/conventions_page.py            # rewrite docs/conventions.md
    python scripts/conventions_page.py --check    # exit 1 when the committed page differs
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from provtrace import conventions as c

PAGE = Path(__file__).resolve().parent.parent / "docs" / "conventions.md"

EVERY_STEP = "*"
REQUIRED = "required"
AUDIT_REQUIRED = "required (`audit` profile), else recommended"
RECOMMENDED = "recommended"


def conditionally(condition: str) -> str:
    return f"conditionally required: {condition}"


def opt_in(condition: str) -> str:
    return f"opt-in: {condition}"


@dataclass(frozen=True)
class Attribute:
    """What the page says about one attribute constant (``constant`` names it in the module)."""

    constant: str
    type: str
    meaning: str
    levels: dict[str, str] = field(default_factory=dict)  # step (or record kind) -> level

    @property
    def name(self) -> str:
        value: str = getattr(c, self.constant)
        return value


STRING, INT, BOOL, DOUBLE, STRINGS = "string", "int", "boolean", "double", "string[]"
LLM, TOOL, FETCH, POLICY = c.STEP_LLM_CALL, c.STEP_TOOL_CALL, c.STEP_SECRET_FETCH, c.STEP_POLICY_CHECK
APPROVAL, ACTION, VERIFICATION, DECISION = (
    c.STEP_APPROVAL,
    c.STEP_ACTION,
    c.STEP_VERIFICATION,
    c.STEP_DECISION,
)
CONTENT = "per capture mode (`redacted`, `full`)"
STORE_INSTR = "written by the secret-store instrumentations (hvac, botocore)"
ISSUANCE = "a credential issuance (a login, an STS call)"

# Records that are not steps: the page has one table for each.
SEAL, CHECKPOINT, TIMESTAMP, VIOLATION, RELEASE, LINK, RESOURCE = (
    "seal",
    "checkpoint",
    "timestamp",
    "violation",
    "release",
    "link",
    "resource",
)

PROVENANCE: tuple[Attribute, ...] = (
    # common to every step
    Attribute("STEP", STRING, "the step kind (values below)", {EVERY_STEP: REQUIRED}),
    Attribute(
        "DECISION_ID",
        STRING,
        "the decision the step belongs to (its root's id); on a violation record, the segment's",
        {EVERY_STEP: REQUIRED, VIOLATION: conditionally("the segment held a decision")},
    ),
    Attribute(
        "ACTOR_ID",
        STRING,
        "who acted: the agent (or the MCP server serving an uninstrumented caller)",
        {EVERY_STEP: REQUIRED},
    ),
    Attribute(
        "NHI_ID",
        STRING,
        "the non-human identity the step acted as (service account, token's identity, AWS caller ARN)",
        {EVERY_STEP: conditionally("an identity acted (inherited from the decision)"), FETCH: REQUIRED},
    ),
    Attribute(
        "CAPTURE_MODE",
        STRING,
        "the capture mode in force: `none`, `digest`, `redacted`, `full`",
        {EVERY_STEP: RECOMMENDED},
    ),
    Attribute(
        "CONTENT_TRUNCATED",
        STRINGS,
        "content attributes cut at `content_max_bytes` (their digests cover the whole value)",
        {EVERY_STEP: conditionally("content was truncated")},
    ),
    Attribute(
        "CONTENT_KEYED",
        STRINGS,
        "digest attributes that are HMAC-SHA256 under the evidence owner's digest key, because the"
        " content held a fetched secret",
        {EVERY_STEP: conditionally("a digested content held a fetched secret")},
    ),
    Attribute(
        "CONTENT_KEY_ID",
        STRING,
        "id of that digest key (`hmac-sha256:…`)",
        {EVERY_STEP: conditionally("`provenance.content.keyed` is set")},
    ),
    Attribute(
        "LINKS_MIRROR",
        STRINGS,
        "`type:trace_id:span_id[:tool_call_id]` per causal link (Jaeger's UI and v1 API drop link"
        " attributes)",
        {EVERY_STEP: conditionally("the step has causal links")},
    ),
    Attribute(
        "UPSTREAM_SAMPLED",
        BOOL,
        "`false` when a remote parent asked not to sample (recorded anyway)",
        {EVERY_STEP: conditionally("a remote parent's sampled flag was 0")},
    ),
    Attribute(
        "INPUT_SHA256",
        STRING,
        "SHA-256 (lowercase hex) of the step's input, canonical RFC 8785 JSON",
        {TOOL: REQUIRED, LLM: REQUIRED, POLICY: REQUIRED, DECISION: RECOMMENDED, VERIFICATION: RECOMMENDED},
    ),
    Attribute(
        "OUTPUT_SHA256",
        STRING,
        "SHA-256 of the step's output (not required of a step that failed)",
        {
            TOOL: REQUIRED,
            LLM: REQUIRED,
            POLICY: RECOMMENDED,
            DECISION: RECOMMENDED,
            ACTION: RECOMMENDED,
            VERIFICATION: RECOMMENDED,
        },
    ),
    Attribute(
        "INPUT_CONTENT",
        STRING,
        "the input as JSON, redacted",
        {
            POLICY: opt_in(CONTENT),
            APPROVAL: opt_in(CONTENT),
            DECISION: opt_in(CONTENT),
            VERIFICATION: opt_in(CONTENT),
        },
    ),
    Attribute(
        "OUTPUT_CONTENT",
        STRING,
        "the output as JSON, redacted",
        {
            POLICY: opt_in(CONTENT),
            ACTION: opt_in(CONTENT),
            DECISION: opt_in(CONTENT),
            VERIFICATION: opt_in(CONTENT),
        },
    ),
    Attribute(
        "OUTCOME",
        STRING,
        "`success`, `failure` (the body raised) or `refused` (the guard refused)",
        {ACTION: REQUIRED},
    ),
    # decision
    Attribute("DECISION_NAME", STRING, "what was decided, e.g. `contain INC-4711`", {DECISION: REQUIRED}),
    Attribute(
        "DECISION_TRIGGER",
        STRING,
        "what set it off, e.g. `alert:INC-4711`, `mcp:tools/call#7`",
        {DECISION: REQUIRED},
    ),
    # llm_call
    Attribute(
        "OUTPUT_PARTIAL",
        BOOL,
        "`true` when a streamed answer ended early (closed, dropped, broken): the output covers what"
        " reached the caller",
        {LLM: conditionally("a stream ended before the model finished")},
    ),
    # secret_fetch
    Attribute(
        "SECRET_STORE",
        STRING,
        "the store: `vault`, `openbao`, `aws.secretsmanager`, `aws.ssm`, `aws.sts`, ...",
        {FETCH: REQUIRED, ACTION: conditionally("a change to a secret store, recorded by hvac or botocore")},
    ),
    Attribute("SECRET_REF", STRING, "which secret: a path, name or ARN (never the value)", {FETCH: REQUIRED}),
    Attribute(
        "SECRET_VERSION", STRING, "the version read", {FETCH: conditionally("the store reports versions")}
    ),
    Attribute(
        "SECRET_OPERATION",
        STRING,
        "the store's operation (`kv.read`, `auth.login`, `GetSecretValue`, `AssumeRole`, ...); "
        + STORE_INSTR,
        {FETCH: RECOMMENDED, ACTION: RECOMMENDED},
    ),
    Attribute(
        "SECRET_ENGINE",
        STRING,
        "the kind of engine (`kv-v1`, `kv-v2`, `database`, `secretsmanager`, `ssm`, `sts`, ...)",
        {FETCH: RECOMMENDED, ACTION: RECOMMENDED},
    ),
    Attribute(
        "SECRET_MOUNT",
        STRING,
        "the Vault mount point",
        {FETCH: conditionally("Vault / OpenBao"), ACTION: conditionally("Vault / OpenBao")},
    ),
    Attribute(
        "SECRET_ARN",
        STRING,
        "the AWS ARN of the secret or parameter",
        {FETCH: conditionally("AWS"), ACTION: conditionally("AWS")},
    ),
    Attribute(
        "SECRET_VERSION_STAGES",
        STRINGS,
        "Secrets Manager staging labels of the version (`AWSCURRENT`, ...)",
        {FETCH: conditionally("Secrets Manager"), ACTION: conditionally("Secrets Manager")},
    ),
    Attribute(
        "SECRET_TYPE",
        STRING,
        "an SSM parameter's type (`SecureString`, `String`, `StringList`)",
        {FETCH: conditionally("SSM")},
    ),
    Attribute(
        "SECRET_REQUEST_ID",
        STRING,
        "the store's id of the request: Vault's `request_id` (its audit log's `request.id`), AWS's"
        " `RequestId` (CloudTrail's `requestID`)",
        {FETCH: RECOMMENDED, ACTION: RECOMMENDED},
    ),
    Attribute(
        "SECRET_RETRIES",
        INT,
        "how many times the SDK retried the request",
        {FETCH: conditionally("AWS"), ACTION: conditionally("AWS")},
    ),
    Attribute(
        "SECRET_REFS",
        STRINGS,
        "the references a batch returned (each also has a child `secret_fetch`)",
        {FETCH: conditionally("a batch fetch")},
    ),
    Attribute(
        "SECRET_ERRORS",
        STRINGS,
        "`ref:error code` per item a batch could not return",
        {FETCH: conditionally("a batch fetch with failed items")},
    ),
    Attribute(
        "LEASE_ID",
        STRING,
        "a dynamic secret's or token's lease id (an identifier, not a secret)",
        {FETCH: conditionally("the store returned a lease")},
    ),
    Attribute(
        "LEASE_DURATION",
        INT,
        "the lease's duration in seconds",
        {FETCH: conditionally("the store returned a lease")},
    ),
    Attribute(
        "LEASE_RENEWABLE",
        BOOL,
        "whether the lease can be renewed",
        {FETCH: conditionally("the store returned a lease")},
    ),
    # the identity behind a credential
    Attribute(
        "NHI_ACCESSOR",
        STRING,
        "the accessor of the Vault token in use (not the token)",
        {FETCH: conditionally("Vault / OpenBao"), ACTION: conditionally("Vault / OpenBao")},
    ),
    Attribute(
        "NHI_ENTITY_ID",
        STRING,
        "the Vault identity entity of that token",
        {FETCH: conditionally("Vault / OpenBao"), ACTION: conditionally("Vault / OpenBao")},
    ),
    Attribute(
        "NHI_POLICIES",
        STRINGS,
        "the token's policies",
        {FETCH: conditionally("Vault / OpenBao"), ACTION: conditionally("Vault / OpenBao")},
    ),
    Attribute(
        "NHI_AUTH_PATH",
        STRING,
        "where the token was issued (`auth/approle/login`, `auth/token/create`, ...)",
        {FETCH: conditionally("Vault / OpenBao"), ACTION: conditionally("Vault / OpenBao")},
    ),
    Attribute(
        "NHI_ARN",
        STRING,
        "the AWS caller identity (`sts:GetCallerIdentity`, once per access key)",
        {FETCH: conditionally("AWS"), ACTION: conditionally("AWS")},
    ),
    Attribute(
        "NHI_ACCOUNT",
        STRING,
        "the AWS account of the caller",
        {FETCH: conditionally("AWS"), ACTION: conditionally("AWS")},
    ),
    Attribute(
        "NHI_ACCESS_KEY_ID",
        STRING,
        "the AWS access key id in use (CloudTrail logs it; the secret key is never read)",
        {FETCH: conditionally("AWS"), ACTION: conditionally("AWS")},
    ),
    Attribute(
        "NHI_CREDENTIAL_SOURCE",
        STRING,
        "where botocore found the credentials (`env`, `shared-credentials-file`, `assume-role`, ...)",
        {FETCH: conditionally("AWS"), ACTION: conditionally("AWS")},
    ),
    Attribute(
        "NHI_LOOKUP_ERROR",
        STRING,
        "why the identity could not be looked up (then `provenance.nhi.id` is the decision's, unchecked)",
        {FETCH: conditionally("the lookup failed"), ACTION: conditionally("the lookup failed")},
    ),
    # credential issuance
    Attribute(
        "CREDENTIAL_METHOD",
        STRING,
        "how the credential was issued: a Vault auth method (`approle`, `jwt`, `kubernetes`,"
        " `token`) or an STS operation",
        {FETCH: conditionally(ISSUANCE)},
    ),
    Attribute(
        "CREDENTIAL_ROLE",
        STRING,
        "the role it was issued for (a Vault role name, an AWS role ARN)",
        {FETCH: conditionally(ISSUANCE)},
    ),
    Attribute(
        "CREDENTIAL_SESSION_NAME",
        STRING,
        "the AWS role session name",
        {FETCH: conditionally("an STS AssumeRole*")},
    ),
    Attribute(
        "CREDENTIAL_ACCESSOR",
        STRING,
        "the issued Vault token's accessor",
        {FETCH: conditionally("a Vault token was issued")},
    ),
    Attribute(
        "CREDENTIAL_ENTITY_ID",
        STRING,
        "the issued Vault token's identity entity",
        {FETCH: conditionally("a Vault token was issued")},
    ),
    Attribute(
        "CREDENTIAL_POLICIES",
        STRINGS,
        "the issued Vault token's policies",
        {FETCH: conditionally("a Vault token was issued")},
    ),
    Attribute(
        "CREDENTIAL_TOKEN_TYPE",
        STRING,
        "the issued Vault token's type (`service`, `batch`)",
        {FETCH: conditionally("a Vault token was issued")},
    ),
    Attribute(
        "CREDENTIAL_ACCESS_KEY_ID",
        STRING,
        "the issued AWS access key id",
        {FETCH: conditionally("STS issued keys")},
    ),
    Attribute("CREDENTIAL_ARN", STRING, "the assumed-role ARN", {FETCH: conditionally("an STS AssumeRole*")}),
    Attribute(
        "CREDENTIAL_EXPIRES_AT",
        STRING,
        "when the issued credential expires (ISO 8601)",
        {FETCH: conditionally(ISSUANCE)},
    ),
    # policy_check
    Attribute("POLICY_ID", STRING, "the policy, e.g. `fw-change`", {POLICY: REQUIRED}),
    Attribute("POLICY_VERSION", STRING, "the policy's version", {POLICY: AUDIT_REQUIRED}),
    Attribute(
        "POLICY_ENGINE", STRING, "what evaluated it (`opa`, `cedar`, `manual`, ...)", {POLICY: RECOMMENDED}
    ),
    Attribute("POLICY_DECISION", STRING, "`allow` or `deny`", {POLICY: REQUIRED}),
    Attribute("POLICY_REASON", STRING, "why", {POLICY: RECOMMENDED}),
    Attribute(
        "POLICY_ACTIONS",
        STRINGS,
        "action types the check authorises (`actions=`); without it a check authorises only actions"
        " whose parameters equal its input",
        {POLICY: conditionally("`actions=` given")},
    ),
    # approval
    Attribute("APPROVAL_APPROVER_ID", STRING, "who approved or rejected", {APPROVAL: REQUIRED}),
    Attribute("APPROVAL_DECISION", STRING, "`approved` or `rejected`", {APPROVAL: REQUIRED}),
    Attribute(
        "APPROVAL_PARAMS_SHA256",
        STRING,
        "digest of the parameters approved (equal to the action's `provenance.action.params.sha256`)",
        {APPROVAL: REQUIRED},
    ),
    Attribute(
        "APPROVAL_NONCE", STRING, "single-use nonce: one approval authorises one action", {APPROVAL: REQUIRED}
    ),
    Attribute("APPROVAL_EXPIRES_AT", STRING, "when the approval expires (ISO 8601)", {APPROVAL: REQUIRED}),
    Attribute(
        "APPROVAL_METHOD",
        STRING,
        "how it was given (`chatops`, `ticket`, `mfa`, ...)",
        {APPROVAL: RECOMMENDED},
    ),
    Attribute("APPROVAL_TICKET", STRING, "the change ticket, e.g. `CHG-42`", {APPROVAL: RECOMMENDED}),
    Attribute("APPROVAL_REASON", STRING, "the approver's reason", {APPROVAL: RECOMMENDED}),
    # action
    Attribute(
        "ACTION_TYPE",
        STRING,
        "what kind of change, e.g. `firewall.rule.open`, `secret.write`",
        {ACTION: REQUIRED},
    ),
    Attribute("ACTION_TARGET", STRING, "what it changed, e.g. `sg-123/rule-9`", {ACTION: REQUIRED}),
    Attribute(
        "ACTION_PRIVILEGED",
        BOOL,
        "whether the change is privileged (then an approval is required)",
        {ACTION: REQUIRED},
    ),
    Attribute("ACTION_PARAMS_SHA256", STRING, "digest of the action's parameters", {ACTION: REQUIRED}),
    Attribute("ACTION_PARAMS_CONTENT", STRING, "the parameters as JSON, redacted", {ACTION: opt_in(CONTENT)}),
    Attribute(
        "ACTION_REQUIRE",
        STRINGS,
        "the guard's requirements (`policy`, `approval`)",
        {ACTION: conditionally("`require=` given")},
    ),
    Attribute(
        "PARAMS_INEXACT",
        STRING,
        "why the parameters could not be bound exactly (then no parameter digest is recorded and no"
        " approval can match)",
        {
            ACTION: conditionally("parameters not canonical"),
            APPROVAL: conditionally("parameters not canonical"),
        },
    ),
    Attribute("CHANGE_BEFORE_SHA256", STRING, "digest of the state before the change", {ACTION: RECOMMENDED}),
    Attribute("CHANGE_AFTER_SHA256", STRING, "digest of the state after the change", {ACTION: RECOMMENDED}),
    Attribute(
        "CHANGE_BEFORE_CONTENT", STRING, "the state before, as JSON, redacted", {ACTION: opt_in(CONTENT)}
    ),
    Attribute(
        "CHANGE_AFTER_CONTENT", STRING, "the state after, as JSON, redacted", {ACTION: opt_in(CONTENT)}
    ),
    Attribute(
        "GUARD_VIOLATIONS",
        STRINGS,
        "rule codes of a refusal",
        {ACTION: conditionally("`provenance.outcome` is `refused`")},
    ),
    Attribute(
        "CHANGE_BEFORE_VERSION",
        STRING,
        "the secret version the change replaced",
        {ACTION: conditionally("a secret change")},
    ),
    Attribute(
        "CHANGE_AFTER_VERSION",
        STRING,
        "the secret version the change wrote",
        {ACTION: conditionally("a secret change")},
    ),
    # verification
    Attribute("VERIFICATION_RESULT", STRING, "`pass` or `fail`", {VERIFICATION: REQUIRED}),
    Attribute(
        "VERIFICATION_METHOD", STRING, "how it was checked, e.g. `tcp-probe`", {VERIFICATION: RECOMMENDED}
    ),
    Attribute("VERIFICATION_DETAIL", STRING, "what the check found", {VERIFICATION: RECOMMENDED}),
    # claims: what a peer says about itself, recorded and never trusted
    Attribute(
        "CLAIM_PARENT",
        STRING,
        "the `traceparent` a remote MCP caller sent in `_meta` (its sampled flag never decides recording)",
        {TOOL: conditionally("an MCP server step with a remote caller")},
    ),
    Attribute(
        "CLAIM_ACTOR_ID",
        STRING,
        "the MCP caller's actor as it claimed it (`_meta` key `io.provtrace/caller`)",
        {TOOL: conditionally("an MCP server step whose caller sent it")},
    ),
    Attribute(
        "CLAIM_NHI_ID",
        STRING,
        "the MCP caller's NHI as it claimed it",
        {TOOL: conditionally("an MCP server step whose caller sent it")},
    ),
    Attribute(
        "CLAIM_CLIENT_NAME",
        STRING,
        "the MCP client's self-reported `clientInfo.name`",
        {TOOL: conditionally("an MCP server step")},
    ),
    Attribute(
        "CLAIM_CLIENT_VERSION",
        STRING,
        "the MCP client's self-reported `clientInfo.version`",
        {TOOL: conditionally("an MCP server step")},
    ),
    Attribute(
        "CLAIM_SERVER_NAME",
        STRING,
        "the MCP server's self-reported `serverInfo.name`",
        {TOOL: conditionally("an MCP client step")},
    ),
    Attribute(
        "CLAIM_SERVER_VERSION",
        STRING,
        "the MCP server's self-reported `serverInfo.version`",
        {TOOL: conditionally("an MCP client step")},
    ),
    # causal links
    Attribute("LINK_TYPE", STRING, "the link's kind (table below)", {LINK: REQUIRED}),
    # seals
    Attribute("SEAL_STREAM", STRING, "the stream the seal belongs to (one per process)", {SEAL: REQUIRED}),
    Attribute("SEAL_SEQ", INT, "the seal's sequence number in its stream, from 0", {SEAL: REQUIRED}),
    Attribute("SEAL_PREV", STRING, "digest of the stream's previous seal (the hash chain)", {SEAL: REQUIRED}),
    Attribute("SEAL_SPANS", STRINGS, "`span_id:digest` of every span it covers", {SEAL: REQUIRED}),
    Attribute("SEAL_WITHHELD", STRINGS, "`span_id:digest` of spans kept in the quarantine", {SEAL: REQUIRED}),
    Attribute("SEAL_COMPLETENESS", STRING, "`complete`, `incomplete` or `unchecked`", {SEAL: REQUIRED}),
    Attribute("SEAL_VIOLATIONS", STRINGS, "the completeness rule codes found", {SEAL: REQUIRED}),
    Attribute(
        "SEAL_DIGEST",
        STRING,
        "digest of the seal span's own view (without digest and signature)",
        {SEAL: REQUIRED},
    ),
    Attribute(
        "SEAL_SIGNATURE",
        STRING,
        "Ed25519 signature over the seal's checkpoint (base64)",
        {SEAL: conditionally("a signing key is configured")},
    ),
    Attribute(
        "SEAL_KEY_ID",
        STRING,
        "id of the signing key (`ed25519:…`)",
        {SEAL: conditionally("a signing key is configured")},
    ),
    Attribute(
        "SEAL_REASON",
        STRING,
        "why the seal was made (values below)",
        {SEAL: REQUIRED, VIOLATION: REQUIRED},
    ),
    Attribute(
        "SEAL_HEARTBEAT_INTERVAL",
        DOUBLE,
        "the stream's heartbeat interval in seconds (a tail older than two is lost)",
        {SEAL: REQUIRED},
    ),
    Attribute(
        "SEAL_OPEN_SPANS", STRINGS, "spans of the segment still open when it was sealed", {SEAL: REQUIRED}
    ),
    Attribute(
        "SEAL_TREE_SIZE",
        INT,
        "entries of the stream's RFC 6962 Merkle log of span digests after this seal",
        {SEAL: REQUIRED},
    ),
    Attribute("SEAL_TREE_ROOT", STRING, "the log's root after this seal (lowercase hex)", {SEAL: REQUIRED}),
    Attribute(
        "SEAL_RECOVERED_FROM",
        STRING,
        "the dead stream whose progress log held the spans this seal covers",
        {SEAL: conditionally("the seal's reason is `unfinished` or `recovered`")},
    ),
    Attribute(
        "SEAL_LAST_STEP",
        STRING,
        "the last step the dead process recorded of the decision: `name (span id)`",
        {SEAL: conditionally("the seal's reason is `unfinished` or `recovered`")},
    ),
    Attribute(
        "SEAL_MONOTONIC",
        INT,
        "the monotonic clock (ns) when the seal was issued; compared only within one clock run",
        {SEAL: RECOMMENDED},
    ),
    Attribute(
        "SEAL_CLOCK_RUN",
        STRING,
        "the process run the monotonic reading belongs to (process id and a random id, new after fork)",
        {SEAL: RECOMMENDED},
    ),
    Attribute(
        "CLOCK_RUN",
        STRING,
        "the clock run of the step's monotonic reading (as `provenance.seal.clock_run`)",
        {POLICY: RECOMMENDED, APPROVAL: RECOMMENDED, ACTION: RECOMMENDED},
    ),
    Attribute(
        "CLOCK_MONOTONIC",
        INT,
        "the monotonic clock (ns) at the step's start: the guard and rules order and expire by it",
        {POLICY: RECOMMENDED, APPROVAL: RECOMMENDED, ACTION: RECOMMENDED},
    ),
    Attribute(
        "CLOCK_END_BEFORE_START",
        INT,
        "how many ns before its start the wall clock ended the span (it keeps its start, 1 µs long)",
        {EVERY_STEP: conditionally("the wall clock was set back during the span")},
    ),
    Attribute(
        "CHECKPOINT_NOTE",
        STRING,
        "the seal's checkpoint, a C2SP signed note (the seal's signature is its signature line)",
        {CHECKPOINT: REQUIRED},
    ),
    Attribute(
        "TIMESTAMP_TOKEN",
        STRING,
        "a base64 DER RFC 3161 TimeStampResp over the checkpoint note",
        {TIMESTAMP: REQUIRED},
    ),
    # violation records and releases
    Attribute(
        "VIOLATION_CODES",
        STRINGS,
        "the rule codes of the quarantined (or annotated) segment",
        {VIOLATION: REQUIRED, RELEASE: REQUIRED},
    ),
    Attribute(
        "VIOLATION_DETAILS",
        STRINGS,
        "one JSON object per violation: ids and attribute names, never content",
        {VIOLATION: REQUIRED},
    ),
    Attribute(
        "VIOLATION_QUARANTINE_ID",
        STRING,
        "the quarantine entry holding the segment",
        {VIOLATION: conditionally("`enforce` mode")},
    ),
    Attribute("VIOLATION_SPAN_COUNT", INT, "how many spans the segment held", {VIOLATION: REQUIRED}),
    Attribute("RELEASE_BY", STRING, "who released the quarantined segment", {RELEASE: REQUIRED}),
    Attribute("RELEASE_REASON", STRING, "why", {RELEASE: REQUIRED}),
    Attribute("RELEASE_QUARANTINE_ID", STRING, "the quarantine entry released", {RELEASE: REQUIRED}),
)

MCP_TOOL = conditionally("an MCP call")
VAULT_CHANGE = conditionally("a Vault / OpenBao secret change")
SEMCONV: tuple[Attribute, ...] = (
    Attribute(
        "GEN_AI_OPERATION_NAME",
        STRING,
        "`chat` for a model call, `execute_tool` for a tool call",
        {LLM: REQUIRED, TOOL: RECOMMENDED},
    ),
    Attribute("GEN_AI_PROVIDER_NAME", STRING, "`openai`, `anthropic`, ...", {LLM: REQUIRED}),
    Attribute("GEN_AI_REQUEST_MODEL", STRING, "the model asked for", {LLM: REQUIRED}),
    Attribute("GEN_AI_RESPONSE_MODEL", STRING, "the model that answered", {LLM: RECOMMENDED}),
    Attribute("GEN_AI_RESPONSE_ID", STRING, "the provider's id of the answer", {LLM: RECOMMENDED}),
    Attribute("GEN_AI_RESPONSE_FINISH_REASONS", STRINGS, "the provider's finish reasons", {LLM: RECOMMENDED}),
    Attribute("GEN_AI_USAGE_INPUT_TOKENS", INT, "input tokens (cached input included)", {LLM: RECOMMENDED}),
    Attribute("GEN_AI_USAGE_OUTPUT_TOKENS", INT, "output tokens", {LLM: RECOMMENDED}),
    Attribute(
        "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
        INT,
        "input tokens read from the provider's cache",
        {LLM: conditionally("the provider reports it")},
    ),
    Attribute(
        "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS",
        INT,
        "input tokens written to the provider's cache",
        {LLM: conditionally("the provider reports it")},
    ),
    Attribute(
        "GEN_AI_USAGE_REASONING_OUTPUT_TOKENS",
        INT,
        "output tokens spent on reasoning",
        {LLM: conditionally("the provider reports it")},
    ),
    Attribute(
        "GEN_AI_INPUT_MESSAGES",
        STRING,
        "the messages sent, in the GenAI JSON shape, redacted",
        {LLM: opt_in(CONTENT)},
    ),
    Attribute(
        "GEN_AI_OUTPUT_MESSAGES",
        STRING,
        "the answer's messages, in the GenAI JSON shape, redacted",
        {LLM: opt_in(CONTENT)},
    ),
    Attribute(
        "GEN_AI_SYSTEM_INSTRUCTIONS",
        STRING,
        "never written: system instructions are the leading `system` message of"
        " `gen_ai.input.messages` (what another instrumentation writes under it on a shared span is"
        " dropped)",
        {LLM: "not written"},
    ),
    Attribute(
        "GEN_AI_TOOL_DEFINITIONS",
        STRING,
        "never written (dropped from shared spans, like the system instructions)",
        {LLM: "not written"},
    ),
    Attribute(
        "GEN_AI_REQUEST_TEMPERATURE", DOUBLE, "as the call set it", {LLM: conditionally("the call sets it")}
    ),
    Attribute("GEN_AI_REQUEST_TOP_P", DOUBLE, "as the call set it", {LLM: conditionally("the call sets it")}),
    Attribute("GEN_AI_REQUEST_TOP_K", DOUBLE, "as the call set it", {LLM: conditionally("the call sets it")}),
    Attribute(
        "GEN_AI_REQUEST_MAX_TOKENS", INT, "as the call set it", {LLM: conditionally("the call sets it")}
    ),
    Attribute(
        "GEN_AI_REQUEST_STOP_SEQUENCES",
        STRINGS,
        "as the call set them",
        {LLM: conditionally("the call sets them")},
    ),
    Attribute("GEN_AI_REQUEST_SEED", INT, "as the call set it", {LLM: conditionally("the call sets it")}),
    Attribute(
        "GEN_AI_REQUEST_FREQUENCY_PENALTY",
        DOUBLE,
        "as the call set it",
        {LLM: conditionally("the call sets it")},
    ),
    Attribute(
        "GEN_AI_REQUEST_PRESENCE_PENALTY",
        DOUBLE,
        "as the call set it",
        {LLM: conditionally("the call sets it")},
    ),
    Attribute(
        "GEN_AI_REQUEST_CHOICE_COUNT",
        INT,
        "choices asked for (when not 1)",
        {LLM: conditionally("the call sets it")},
    ),
    Attribute(
        "GEN_AI_REQUEST_STREAM",
        BOOL,
        "whether the answer was streamed",
        {LLM: conditionally("the call streams")},
    ),
    Attribute(
        "GEN_AI_OUTPUT_TYPE",
        STRING,
        "`text`, `json`, ... as the call asked",
        {LLM: conditionally("the call sets it")},
    ),
    Attribute("GEN_AI_TOOL_NAME", STRING, "the tool called", {TOOL: REQUIRED}),
    Attribute(
        "GEN_AI_TOOL_CALL_ID",
        STRING,
        "the id of the model's proposal a step carries out (also on its `triggered_by` link)",
        {
            TOOL: conditionally("`call_id=` given or the call carries one"),
            LINK: conditionally("a `triggered_by` link to a proposal"),
        },
    ),
    Attribute(
        "GEN_AI_TOOL_CALL_ARGUMENTS",
        STRING,
        "the tool's arguments as JSON, redacted",
        {TOOL: opt_in(CONTENT)},
    ),
    Attribute(
        "GEN_AI_TOOL_CALL_RESULT", STRING, "the tool's result as JSON, redacted", {TOOL: opt_in(CONTENT)}
    ),
    Attribute(
        "GEN_AI_PROMPT_NAME",
        STRING,
        "the MCP prompt got (`prompts/get`), redacted",
        {TOOL: conditionally("an MCP `prompts/get`")},
    ),
    Attribute("MCP_METHOD_NAME", STRING, "`tools/call`, `resources/read`, `prompts/get`", {TOOL: MCP_TOOL}),
    Attribute("MCP_PROTOCOL_VERSION", STRING, "the negotiated MCP protocol version", {TOOL: MCP_TOOL}),
    Attribute(
        "MCP_RESOURCE_URI",
        STRING,
        "the resource read (`resources/read`), redacted",
        {TOOL: conditionally("an MCP `resources/read`")},
    ),
    Attribute(
        "MCP_SESSION_ID",
        STRING,
        "the MCP session (streamable HTTP)",
        {TOOL: conditionally("the transport has sessions")},
    ),
    Attribute("JSONRPC_REQUEST_ID", STRING, "the JSON-RPC request id", {TOOL: MCP_TOOL}),
    Attribute(
        "RPC_RESPONSE_STATUS_CODE",
        STRING,
        "the JSON-RPC error code of a failed MCP request",
        {TOOL: conditionally("a JSON-RPC error")},
    ),
    Attribute("NETWORK_TRANSPORT", STRING, "`pipe` (stdio), `tcp` (HTTP), `inproc`", {TOOL: MCP_TOOL}),
    Attribute(
        "NETWORK_PROTOCOL_NAME", STRING, "`http` for streamable HTTP", {TOOL: conditionally("MCP over HTTP")}
    ),
    Attribute(
        "ERROR_TYPE",
        STRING,
        "why a step failed: an exception class, an AWS error code, `tool_error` for an MCP error result",
        {EVERY_STEP: conditionally("the step failed")},
    ),
    Attribute(
        "SERVER_ADDRESS",
        STRING,
        "the model API's or Vault's host",
        {LLM: RECOMMENDED, FETCH: RECOMMENDED, ACTION: VAULT_CHANGE},
    ),
    Attribute("SERVER_PORT", INT, "its port", {LLM: RECOMMENDED, FETCH: RECOMMENDED, ACTION: VAULT_CHANGE}),
    Attribute(
        "CLOUD_REGION", STRING, "the AWS region", {FETCH: conditionally("AWS"), ACTION: conditionally("AWS")}
    ),
    Attribute(
        "SERVICE_NAME",
        STRING,
        "the agent's service (`service_name=`, `OTEL_SERVICE_NAME`)",
        {RESOURCE: REQUIRED},
    ),
)

SPAN_NAMES = {
    DECISION: "decision {name}",
    LLM: "chat {model}",
    TOOL: "execute_tool {name} (MCP: {method} {name})",
    FETCH: "secret_fetch {store}",
    POLICY: "policy_check {id}",
    APPROVAL: "approval {ticket}",
    ACTION: "action {type}",
    VERIFICATION: "verification {action type}",
}
RECORDS = (
    (SEAL, c.SEAL_SPAN_NAME, "one per sealed segment, heartbeat, flush and stream end"),
    (CHECKPOINT, c.CHECKPOINT_SPAN_NAME, "a child of its seal"),
    (TIMESTAMP, c.TIMESTAMP_SPAN_NAME, "a child of the checkpoint span (with `tsa_url`)"),
    (VIOLATION, c.VIOLATION_SPAN_NAME, "content-free notice of an incomplete segment"),
    (RELEASE, c.RELEASE_SPAN_NAME, "a quarantined segment released"),
)
LINKS = {
    c.LINK_AUTHORIZED_BY: ("action", "the policy check that allowed it"),
    c.LINK_APPROVED_BY: ("action", "the approval bound to its parameters"),
    c.LINK_USED_SECRET: ("action", "each secret fetch of the decision"),
    c.LINK_TRIGGERED_BY: (
        "tool call, secret fetch, policy check, approval, action",
        "the LLM call whose answer proposed the step",
    ),
    c.LINK_VERIFIES: ("verification", "the action it checks"),
    c.LINK_WRITTEN_BY: ("secret fetch", "the action (in this process) that wrote the version read"),
}
SEAL_REASONS = {
    c.SEAL_REASON_ROOT_ENDED: "the decision ended",
    c.SEAL_REASON_STRAGGLERS: "spans that ended after their segment was sealed",
    c.SEAL_REASON_TIMEOUT: "the decision ran past `decision_timeout`",
    c.SEAL_REASON_MEMORY_BOUND: "`max_buffered_spans` reached",
    c.SEAL_REASON_SHUTDOWN: "the process shut down with the segment open",
    c.SEAL_REASON_CLOSE: "the stream's last seal, with no spans: nothing follows",
    c.SEAL_REASON_FLUSH: "`force_flush()`",
    c.SEAL_REASON_HEARTBEAT: "the stream was idle for a heartbeat interval",
    c.SEAL_REASON_RELEASE: "a quarantined segment released",
    c.SEAL_REASON_UNFINISHED: "a decision a dead process never finished, recovered from its progress log",
    c.SEAL_REASON_RECOVERED: "spans a dead process ended but never spooled, recovered from its progress log",
}
ACTION_TYPES = {
    c.ACTION_SECRET_WRITE: "a new secret value or version",
    c.ACTION_SECRET_ROTATE: "a rotation started",
    c.ACTION_SECRET_STAGE: "a staging label moved between versions",
    c.ACTION_SECRET_DELETE: "versions or the secret deleted or destroyed",
    c.ACTION_SECRET_RESTORE: "deleted versions restored",
}


class ConventionsPageError(ValueError):
    """The constants module and this page's table disagree."""


def attribute_constants() -> dict[str, str]:
    """Every constant of provtrace.conventions that names an attribute (not a span name, not a
    value): constant name -> attribute name."""
    values = set(SEAL_REASONS) | set(ACTION_TYPES) | {r[1] for r in RECORDS}
    return {
        name: value
        for name, value in vars(c).items()
        if name.isupper()
        and isinstance(value, str)
        and "." in value
        and not value.startswith("http")
        and value not in values
    }


def check_coverage() -> None:
    described = [a.constant for a in PROVENANCE + SEMCONV]
    constants = attribute_constants()
    missing = sorted(set(constants) - set(described))
    unknown = sorted(set(described) - set(constants))
    twice = sorted({name for name in described if described.count(name) > 1})
    problems = []
    if missing:
        problems.append(f"no entry in scripts/conventions_page.py for {', '.join(missing)}")
    if unknown:
        problems.append(f"entries naming no attribute constant: {', '.join(unknown)}")
    if twice:
        problems.append(f"described twice: {', '.join(twice)}")
    for prefix, described_values in (
        ("SEAL_REASON_", SEAL_REASONS),
        ("ACTION_SECRET_", ACTION_TYPES),
        ("LINK_", LINKS),
    ):
        values = {
            v for n, v in vars(c).items() if n.startswith(prefix) and isinstance(v, str) and n != "LINK_TYPE"
        }
        undescribed = sorted(values - set(described_values))
        if undescribed:
            problems.append(
                f"no description in scripts/conventions_page.py for {prefix}* {', '.join(undescribed)}"
            )
    for step in c.STEPS:
        for name in required_of(step, c.PROFILE_BASELINE):
            levels = next(a.levels for a in PROVENANCE + SEMCONV if a.name == name)
            if levels.get(step, levels.get(EVERY_STEP)) != REQUIRED:
                problems.append(f"{name} is required on {step} (conventions.py) but not marked so")
    if problems:
        raise ConventionsPageError("; ".join(problems))


def required_of(step: str, profile: str) -> tuple[str, ...]:
    required = c.COMMON_REQUIRED + c.REQUIRED_ATTRIBUTES.get(step, ())
    if profile == c.PROFILE_AUDIT:
        required += c.AUDIT_REQUIRED_ATTRIBUTES.get(step, ())
    return required


def level_on(attribute: Attribute, step: str) -> str | None:
    """The attribute's level on a step (``EVERY_STEP`` covering the eight) or on a record kind."""
    level = attribute.levels.get(step, attribute.levels.get(EVERY_STEP) if step in c.STEPS else None)
    if attribute.name in c.AUDIT_REQUIRED_ATTRIBUTES.get(step, ()) and level != REQUIRED:
        return AUDIT_REQUIRED
    return level


def code(text: str) -> str:
    return f"`{text}`"


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return [*lines, ""]


def attribute_rows(attributes: tuple[Attribute, ...], step: str) -> list[tuple[str, ...]]:
    order = {REQUIRED: 0, AUDIT_REQUIRED: 1}
    rows = []
    for attribute in attributes:
        level = level_on(attribute, step)
        if level is not None:
            rows.append((order.get(level, 2), code(attribute.name), attribute.type, level, attribute.meaning))
    rows.sort(key=lambda row: row[0])
    return [row[1:] for row in rows]


def render() -> str:
    check_coverage()
    out = [
        "# Provenance conventions",
        "",
        "<!-- Generated by scripts/conventions_page.py from provtrace.conventions: edit those, then",
        "     run `python scripts/conventions_page.py`; tests/unit/test_docs.py fails when this page",
        "     differs. -->",
        "",
        f"OTel semantic-convention names ({c.SCHEMA_URL.rsplit('/', 1)[-1]}: GenAI, MCP and general) are",
        "used wherever they exist. No standard exists for non-human identities, secrets, policies,",
        "approvals or changes, so provtrace defines the `provenance.*` namespace. Every name lives in one",
        "module, `provtrace.conventions`, and this page is generated from it.",
        "",
        "Requirement levels follow the OpenTelemetry terms: **required** attributes are checked by the",
        "completeness contract (`ATTR-MISSING` when absent: in `enforce` mode the whole decision is",
        "quarantined); the `audit` profile requires a few more. Content digests are not required under",
        '`capture_content="none"`, nor the output digest of a step that failed.',
        "",
        "## Steps",
        "",
    ]
    out += table(
        ("step (`provenance.step`)", "span name", "required (`baseline`)", "also required (`audit`)"),
        [
            (
                code(step),
                code(SPAN_NAMES[step]),
                ", ".join(code(n) for n in required_of(step, c.PROFILE_BASELINE)),
                ", ".join(code(n) for n in c.AUDIT_REQUIRED_ATTRIBUTES.get(step, ())) or "",
            )
            for step in c.STEPS
        ],
    )
    out += ["## Attributes per step", ""]
    for step in c.STEPS:
        out += [f"### `{step}`", ""]
        out += table(
            ("attribute", "type", "requirement level", "meaning"), attribute_rows(PROVENANCE + SEMCONV, step)
        )
    out += [
        "Claims (`provenance.claim.*`) are what a peer says about itself or its caller: recorded, never",
        "trusted, never used to decide what is recorded. No attribute ever holds a secret value, a token,",
        "a password, a JWT or a secret access key.",
        "",
        "## Causal links",
        "",
        "OTel span links; each carries:",
        "",
    ]
    out += table(
        ("attribute", "type", "requirement level", "meaning"), attribute_rows(PROVENANCE + SEMCONV, LINK)
    )
    out += table(
        ("`provenance.link.type`", "from", "to"),
        [(code(kind), LINKS[kind][0], LINKS[kind][1]) for kind in c.LINK_TYPES],
    )
    out += ["## Seals, checkpoints, violation records and releases", ""]
    for kind, span_name, what in RECORDS:
        out += [f"### `{span_name}` span", "", what[0].upper() + what[1:] + ".", ""]
        out += table(("attribute", "type", "requirement level", "meaning"), attribute_rows(PROVENANCE, kind))
    out += ["## Resource", ""]
    out += table(("attribute", "type", "requirement level", "meaning"), attribute_rows(SEMCONV, RESOURCE))
    out += ["## Values", ""]
    out += table(
        ("attribute", "values"),
        [
            (code(c.STEP), ", ".join(code(s) for s in c.STEPS)),
            (
                code(c.OUTCOME),
                ", ".join(code(v) for v in (c.OUTCOME_SUCCESS, c.OUTCOME_FAILURE, c.OUTCOME_REFUSED)),
            ),
            (code(c.POLICY_DECISION), ", ".join(code(v) for v in (c.POLICY_ALLOW, c.POLICY_DENY))),
            (
                code(c.APPROVAL_DECISION),
                ", ".join(code(v) for v in (c.APPROVAL_APPROVED, c.APPROVAL_REJECTED)),
            ),
            (
                code(c.VERIFICATION_RESULT),
                ", ".join(code(v) for v in (c.VERIFICATION_PASS, c.VERIFICATION_FAIL)),
            ),
            (code(c.CAPTURE_MODE), ", ".join(code(v) for v in c.CAPTURE_MODES)),
            (
                code(c.SEAL_COMPLETENESS),
                ", ".join(
                    code(v)
                    for v in (c.COMPLETENESS_COMPLETE, c.COMPLETENESS_INCOMPLETE, c.COMPLETENESS_UNCHECKED)
                ),
            ),
            (
                code(c.ERROR_TYPE),
                f"{code(c.ERROR_TYPE_TOOL_ERROR)} for an MCP tool's error result, else the error's type",
            ),
            (
                code(c.GEN_AI_OPERATION_NAME),
                ", ".join(code(v) for v in (c.GEN_AI_OPERATION_CHAT, c.GEN_AI_OPERATION_EXECUTE_TOOL)),
            ),
        ],
    )
    out += ["`provenance.seal.reason`:", ""]
    out += table(("reason", "sealed because"), [(code(k), v) for k, v in SEAL_REASONS.items()])
    out += ["Action types of secret changes (`provenance.action.type`):", ""]
    out += table(("type", "change"), [(code(k), v) for k, v in ACTION_TYPES.items()])
    out += [
        "## Rule codes",
        "",
        "What each means and how to fix it: [completeness](completeness.md).",
        "",
    ]
    rules = [value for name, value in vars(c).items() if name.startswith("RULE_") and isinstance(value, str)]
    out += [", ".join(code(rule) for rule in rules) + ".", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/conventions.md differs")
    args = parser.parse_args()
    text = render()
    if args.check:
        if PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} differs from what scripts/conventions_page.py generates; run it", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
