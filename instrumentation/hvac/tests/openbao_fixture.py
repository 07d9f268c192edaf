"""The OpenBao dev server these tests run against, seeded with what they use.

Kept in one small module so it can be swapped for the repository's shared OpenBao fixture: the
tests only use ``openbao`` (a started ``scripts/openbao.py`` server: ``url``, ``root_token``,
``request``, ``audit_entries``) and ``approle`` (the AppRole the agent logs in with).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO / "scripts") not in sys.path:
    sys.path.insert(0, str(REPO / "scripts"))

from openbao import OpenBao  # noqa: E402 - scripts/openbao.py, shared with `make demo`

AGENT_POLICY = """
path "kv/data/agents/*" { capabilities = ["create", "read", "update"] }
path "kv/metadata/agents/*" { capabilities = ["read", "list", "delete"] }
path "kv/delete/agents/*" { capabilities = ["update"] }
path "kv1/agents/*" { capabilities = ["create", "read", "update", "delete"] }
path "throttled/*" { capabilities = ["read"] }
"""


@dataclasses.dataclass(frozen=True)
class AppRole:
    name: str
    role_id: str
    mount: str = "approle"


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    server = OpenBao(tmp_path_factory.mktemp("openbao"))
    server.start()
    try:
        server.request("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
        server.request("POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
        server.request("POST", "sys/mounts/throttled", {"type": "kv", "options": {"version": "1"}})
        server.request("POST", "sys/auth/approle", {"type": "approle"})
        server.request("POST", "sys/policies/acl/agent", {"policy": AGENT_POLICY})
        server.request("POST", "auth/approle/role/agent-x", {"token_policies": ["agent"], "token_ttl": "1h"})
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def approle(openbao: OpenBao) -> AppRole:
    answer: Any = openbao.request("GET", "auth/approle/role/agent-x/role-id")
    return AppRole("agent-x", answer["data"]["role_id"])


def new_secret_id(openbao: OpenBao, role: AppRole) -> str:
    answer: Any = openbao.request("POST", f"auth/{role.mount}/role/{role.name}/secret-id")
    secret_id: str = answer["data"]["secret_id"]
    return secret_id
