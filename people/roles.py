"""The seed's roles and permission matrix (seed 003, "Multi-Level User Management"), and what a
grant with overrides gives.

The matrix is the seed's, in meaning: ``transactions.view:readonly`` is ``transactions.view`` (no
route writes transactions), ``users.invite:clinic_staff,nurse,viewer`` is ``users.invite`` limited
to those roles (``INVITABLE``). Two readings make the seed's words hold: ``invoices.manage`` covers
viewing invoices and the data-sent flag, ``users.invite`` covers listing the tenant's users, and the
owner's "full tenant control" covers reading its tenant's transactions, invoices and audit log.
``customer`` is the customer-portal principal (not in the seed's matrix): a tenant's own customer,
who reads only their own rows (``Access.customer_id``).

The studio (seed 002) came after the seed's matrix, which knows nothing of it; its permissions are
granted beside the matrix (``STUDIO``), so the seed's rows stay as the seed wrote them:
``studio.manage`` (clients, quotes, invoices: create, change, send, convert, void; it brings
``studio.view``) to owners and admins, ``studio.view`` (read them) to clinic staff and viewers,
and ``studio.portal`` (a client's own quotes and invoices, through ``customer_id``) to customers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ALL = "*"
PERMISSIONS = frozenset({
    "sync.manual", "sync.webhook", "config.update", "users.invite", "users.manage", "data.export",
    "transactions.view", "invoices.view", "invoices.manage", "invoices.update_data_sent",
    "analytics.view", "reports.view", "audit.view", "users.view",
    "studio.view", "studio.manage", "studio.portal",
})

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "super_admin": frozenset({ALL}),
    "tenant_owner": frozenset({"sync.manual", "sync.webhook", "config.update", "users.invite", "users.manage",
                               "data.export"}),
    "tenant_admin": frozenset({"sync.manual", "transactions.view", "invoices.manage", "users.invite"}),
    "clinic_staff": frozenset({"transactions.view", "invoices.view", "data.export"}),
    "nurse": frozenset({"invoices.view", "invoices.update_data_sent"}),
    "viewer": frozenset({"transactions.view", "invoices.view"}),
    "investor": frozenset({"analytics.view", "reports.view"}),
    "customer": frozenset({"transactions.view", "invoices.view", "studio.portal"}),
}
# The studio's permissions, per role, beside the seed's matrix (the module's docstring).
STUDIO: dict[str, frozenset[str]] = {
    "tenant_owner": frozenset({"studio.manage"}),
    "tenant_admin": frozenset({"studio.manage"}),
    "clinic_staff": frozenset({"studio.view"}),
    "viewer": frozenset({"studio.view"}),
}
TENANT_ROLES = tuple(r for r in ROLE_PERMISSIONS if r != "super_admin")

# What one permission brings with it.
IMPLIED: dict[str, frozenset[str]] = {
    "invoices.manage": frozenset({"invoices.view", "invoices.update_data_sent"}),
    "users.invite": frozenset({"users.view"}),
    "users.manage": frozenset({"users.view", "users.invite"}),
    "studio.manage": frozenset({"studio.view"}),
}
# The seed's "full tenant control" of an owner, beyond its listed permissions (a studio's documents
# included; other roles get studio.view or studio.manage as a grant's override).
OWNER_CONTROL = frozenset({"transactions.view", "invoices.manage", "audit.view", "studio.manage"})

# Which roles a holder of ``users.invite`` may grant; a role not named here grants any tenant role.
INVITABLE: dict[str, frozenset[str]] = {
    "tenant_admin": frozenset({"clinic_staff", "nurse", "viewer"}),
}


class InvalidOverrides(ValueError):
    pass


def check_overrides(overrides: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """``{"add": [...], "remove": [...]}`` of known single permissions (never ``*``)."""
    overrides = dict(overrides or {})
    unknown_keys = set(overrides) - {"add", "remove"}
    if unknown_keys:
        raise InvalidOverrides(f"overrides take only 'add' and 'remove', not {sorted(unknown_keys)}")
    out: dict[str, list[str]] = {}
    for key in ("add", "remove"):
        values = overrides.get(key) or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidOverrides(f"overrides.{key} must be a list of permission names")
        unknown = sorted(set(values) - PERMISSIONS)
        if unknown:
            raise InvalidOverrides(f"unknown permission(s) {unknown}; known: {sorted(PERMISSIONS)}")
        if values:
            out[key] = sorted(set(values))
    return out


def _close(perms: Iterable[str]) -> set[str]:
    out = set(perms)
    for p in list(out):
        out |= IMPLIED.get(p, frozenset())
    return out


def effective(role: str, overrides: Mapping[str, Any] | None = None) -> frozenset[str]:
    """The permissions a grant of ``role`` with ``overrides`` gives (``{"*"}`` for super_admin)."""
    base = ROLE_PERMISSIONS.get(role)
    if base is None:
        return frozenset()
    if ALL in base:
        return base
    overrides = overrides or {}
    if role == "tenant_owner":
        base = base | OWNER_CONTROL
    base = base | STUDIO.get(role, frozenset())
    perms = _close(base) | _close(overrides.get("add") or ())
    return frozenset(perms - set(overrides.get("remove") or ()))


def allows(permissions: frozenset[str], permission: str) -> bool:
    return ALL in permissions or permission in permissions


def may_grant(granter_role: str, granter_perms: frozenset[str], role: str, overrides: Mapping[str, Any]) -> str | None:
    """Why a granter may not grant ``role`` with ``overrides`` (None: they may)."""
    if ALL in granter_perms:
        return None if role in ROLE_PERMISSIONS else f"unknown role {role!r}"
    if not allows(granter_perms, "users.invite"):
        return "your role cannot invite users to this tenant"
    if role not in TENANT_ROLES:
        return f"a {granter_role} cannot grant {role!r}"
    limited = INVITABLE.get(granter_role)
    if limited is not None and role not in limited:
        return f"a {granter_role} may grant only {', '.join(sorted(limited))}"
    beyond = set((overrides or {}).get("add") or ()) - granter_perms
    if beyond:
        return f"you cannot grant permissions you do not hold: {sorted(beyond)}"
    return None
