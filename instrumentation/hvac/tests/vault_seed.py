"""What the hvac tests seed into the shared OpenBao dev server (provtrace.testing's ``openbao``):
KV v2 at ``kv/``, KV v1 at ``kv1/`` and ``throttled/``, and an AppRole ``agent-x`` whose tokens
hold the ``agent`` policy; the conftest applies it once per session."""

from __future__ import annotations

import dataclasses
from typing import Any

from provtrace.testing import OpenBao

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


def seed(server: OpenBao) -> None:
    """The mounts, the policy and the role the tests use."""
    server.request("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
    server.request("POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
    server.request("POST", "sys/mounts/throttled", {"type": "kv", "options": {"version": "1"}})
    server.request("POST", "sys/auth/approle", {"type": "approle"})
    server.request("POST", "sys/policies/acl/agent", {"policy": AGENT_POLICY})
    server.request("POST", "auth/approle/role/agent-x", {"token_policies": ["agent"], "token_ttl": "1h"})


def agent_role(server: OpenBao) -> AppRole:
    answer: Any = server.request("GET", "auth/approle/role/agent-x/role-id")
    return AppRole("agent-x", answer["data"]["role_id"])


def new_secret_id(openbao: OpenBao, role: AppRole) -> str:
    answer: Any = openbao.request("POST", f"auth/{role.mount}/role/{role.name}/secret-id")
    secret_id: str = answer["data"]["secret_id"]
    return secret_id
