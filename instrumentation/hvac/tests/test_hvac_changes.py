"""KV writes and deletes are privileged actions; a rotation reconstructs as write -> fetch -> verification."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import hvac
import pytest
from provtrace_instrumentation_hvac import HvacInstrumentor, action_params
from vault_seed import AppRole, new_secret_id

import provtrace
from provtrace import conventions as c
from provtrace.cli.main import main as cli
from provtrace.testing import OpenBao, Recorded, attrs


def test_a_kv_v2_write_is_a_privileged_action_with_versions(recorded: Recorded, openbao: OpenBao) -> None:
    path = "agents/written-" + secrets.token_hex(4)
    values = ["v1-" + secrets.token_urlsafe(12), "v2-" + secrets.token_urlsafe(12)]
    root = hvac.Client(url=openbao.url, token=openbao.root_token)
    with provtrace.decision("write", trigger="test", actor="agent"):
        for value in values:
            root.secrets.kv.v2.create_or_update_secret(path=path, secret={"token": value}, mount_point="kv")
        read = root.secrets.kv.v2.read_secret_version(
            path=path, mount_point="kv", raise_on_deleted_version=True
        )
        root.secrets.kv.v2.delete_latest_version_of_secret(path=path, mount_point="kv")
    recorded.handle.force_flush(10)
    first, second, delete = recorded.steps(c.STEP_ACTION)
    assert second.name == "action secret.write"
    assert attrs(second)[c.ACTION_TARGET] == f"kv/{path}"
    assert attrs(second)[c.ACTION_PRIVILEGED] is True
    assert {attrs(step)[c.SECRET_STORE] for step in (first, second, delete)} == {"vault"}
    assert c.CHANGE_BEFORE_VERSION not in attrs(first)
    assert (attrs(first)[c.CHANGE_AFTER_VERSION], attrs(second)[c.CHANGE_BEFORE_VERSION]) == ("1", "1")
    assert attrs(second)[c.CHANGE_AFTER_VERSION] == "2"
    assert attrs(second)[c.ACTION_PARAMS_SHA256] == provtrace.digest(
        action_params("kv_v2.create_or_update_secret", "kv", path)
    )
    assert (delete.name, attrs(delete)[c.CHANGE_BEFORE_VERSION]) == ("action secret.delete", "2")
    (fetch,) = recorded.steps(c.STEP_SECRET_FETCH)
    assert attrs(fetch)[c.SECRET_VERSION] == str(read["data"]["metadata"]["version"]) == "2"
    assert [link.context.span_id for link in fetch.links] == [second.context.span_id]
    written = recorded.files_bytes()
    assert all(value.encode() not in written for value in values)


def test_a_guarded_write_is_refused_before_it_reaches_the_store(recorded: Recorded, openbao: OpenBao) -> None:
    HvacInstrumentor().uninstrument()
    HvacInstrumentor().instrument(require=("policy", "approval"))
    path = "agents/guarded-" + secrets.token_hex(4)
    openbao.request("POST", f"kv/data/{path}", {"data": {"token": "kept-" + secrets.token_hex(8)}})
    root = hvac.Client(url=openbao.url, token=openbao.root_token)
    with (
        provtrace.decision("write", trigger="test", actor="agent"),
        pytest.raises(provtrace.ProvenanceViolation),
    ):
        root.secrets.kv.v2.create_or_update_secret(
            path=path, secret={"token": "never-" + secrets.token_hex(8)}, mount_point="kv"
        )
    metadata: Any = openbao.request("GET", f"kv/metadata/{path}")
    assert metadata["data"]["current_version"] == 1  # nothing reached OpenBao
    recorded.handle.force_flush(10)
    (refused,) = recorded.steps(c.STEP_ACTION)
    assert attrs(refused)[c.OUTCOME] == c.OUTCOME_REFUSED


def test_a_rotation_reconstructs_as_write_fetch_verification(
    recorded: Recorded, openbao: OpenBao, approle: AppRole, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Rotate the agent's AppRole secret_id kept in KV: write the new one, read it back, and
    validate it by logging in with it."""
    path = "agents/approle-secret-id"
    root = hvac.Client(url=openbao.url, token=openbao.root_token)
    params = action_params("kv_v2.create_or_update_secret", "kv", path)
    with provtrace.decision(
        "rotate agent-x secret_id", trigger="schedule:rotation", actor="rotator"
    ) as decision:
        with provtrace.policy_check(
            "secret-rotation", version="1", input=params, actions=(c.ACTION_SECRET_WRITE,)
        ) as p:
            p.allow(reason="scheduled rotation")
        with provtrace.approval(approver="alice@example.com", ticket="CHG-43", for_action=params) as a:
            a.approve(reason="rotation window")
        fresh = new_secret_id(openbao, approle)
        root.secrets.kv.v2.create_or_update_secret(path=path, secret={"secret_id": fresh}, mount_point="kv")
        stored = root.secrets.kv.v2.read_secret_version(
            path=path, mount_point="kv", raise_on_deleted_version=True
        )
        with provtrace.verification(method="approle-login") as check:
            agent = hvac.Client(url=openbao.url)
            agent.auth.approle.login(role_id=approle.role_id, secret_id=stored["data"]["data"]["secret_id"])
            if agent.is_authenticated():
                check.passed(detail="the new secret_id logs agent-x in")
    recorded.handle.force_flush(10)
    assert fresh.encode() not in recorded.files_bytes()
    capsys.readouterr()
    archive = str(recorded.home / "archive")
    assert cli(["reconstruct", decision.trace_id, "--archive", archive, "--format", "json"]) in (0, 1)
    chain = json.loads(capsys.readouterr().out)
    assert chain["completeness"] == "complete"
    by_kind = [(s["step"], s["facts"]) for s in chain["steps"]]
    kinds = [kind for kind, _ in by_kind]
    write = kinds.index(c.STEP_ACTION)
    fetch = next(
        i
        for i, (kind, facts) in enumerate(by_kind)
        if kind == c.STEP_SECRET_FETCH and facts.get(c.SECRET_REF) == f"kv/{path}"
    )
    verify = kinds.index(c.STEP_VERIFICATION)
    assert write < fetch < verify
    steps_ = chain["steps"]
    assert {(link["link_type"], link["target_index"]) for link in steps_[fetch]["links"]} == {
        (c.LINK_WRITTEN_BY, steps_[write]["index"])
    }
    assert (c.LINK_VERIFIES, steps_[write]["index"]) in {
        (link["link_type"], link["target_index"]) for link in steps_[verify]["links"]
    }
