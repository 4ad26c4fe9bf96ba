"""Invitations: a grant offered by email, through the tenant's Resend connection, with a signed,
expiring link. The inviter may grant only what the matrix lets their role grant
(``people.roles.may_grant``); accepting makes the account (or uses the existing one) and grants."""

from __future__ import annotations

import datetime as dt
import html
import uuid
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from people import audit, users as people
from people.auth import Access, Auth
from people.roles import check_overrides, may_grant
from resources.email import Email
from warehouse.tables.core import tenants
from warehouse.tables.people import invitations
from warehouse.types import now_utc


def invite(conn: sa.Connection, auth: Auth, access: Access, email: str, role: str, overrides: dict | None,
           grant_expires_at: dt.datetime | None, public_url: str, send, customer_id: str | None = None
           ) -> dict[str, Any]:
    """Record the invitation and send its link (``send(Email, idempotency_key)``), in one transaction:
    an email that could not be sent leaves no invitation behind."""
    email = people.normal_email(email)
    try:
        overrides = check_overrides(overrides)
    except ValueError as exc:
        raise people.PeopleError(str(exc)) from None
    why_not = may_grant(access.role, access.permissions, role, overrides)
    if why_not:
        raise people.PeopleError(why_not, 403, "forbidden")
    if (role == "customer") != bool(customer_id):
        raise people.PeopleError("a customer invitation names the customer (customer_id), and only one does")
    invitation_id = str(uuid.uuid4())
    expires = now_utc() + dt.timedelta(seconds=auth.settings.invitation_s)
    conn.execute(sa.insert(invitations).values(id=invitation_id, tenant_id=access.tenant_id, email=email, role=role,
                                               permissions=overrides, customer_id=customer_id,
                                               grant_expires_at=grant_expires_at,
                                               invited_by=access.principal.user_id, expires_at=expires))
    audit.record(conn, access.principal.user_id, access.tenant_id, "invite", email=email, role=role,
                 overrides=overrides)
    token = auth.invitation_signer.sign({"inv": invitation_id}, auth.settings.invitation_s)
    link = f"{public_url.rstrip('/')}/invitations/accept?token={quote(token, safe='')}"
    tenant_name = conn.execute(sa.select(tenants.c.name).where(tenants.c.tenant_id == access.tenant_id)).scalar()
    who = access.principal.name
    text = (f"{who} invites you to {tenant_name} on Storehouse as {role}.\n\nAccept: {link}\n\n"
            f"The link works until {expires:%Y-%m-%d %H:%M} UTC.")
    body = (f"<p>{html.escape(who)} invites you to <b>{html.escape(tenant_name)}</b> on Storehouse as "
            f"{html.escape(role)}.</p><p><a href=\"{html.escape(link)}\">Accept the invitation</a></p>"
            f"<p>The link works until {expires:%Y-%m-%d %H:%M} UTC.</p>")
    send(Email(to=email, subject=f"Your invitation to {tenant_name}", html=body, text=text,
               tags=(("invitation", invitation_id),)), f"invitation-{invitation_id}")
    return {"id": invitation_id, "email": email, "role": role, "expires_at": expires}


def pending(conn: sa.Connection, auth: Auth, token: str) -> dict[str, Any] | None:
    """The live invitation the link names (None: forged, expired, accepted)."""
    claims = auth.invitation_signer.read(token)
    if not claims or not isinstance(claims.get("inv"), str):
        return None
    i = invitations.c
    row = conn.execute(sa.select(invitations, tenants.c.name.label("tenant_name"))
                       .join(tenants, tenants.c.tenant_id == i.tenant_id)
                       .where(i.id == claims["inv"], i.accepted_at.is_(None), i.expires_at > now_utc())
                       ).mappings().one_or_none()
    return dict(row) if row else None


def accept(conn: sa.Connection, auth: Auth, token: str, name: str, password: str | None) -> dict[str, Any] | None:
    found = pending(conn, auth, token)
    if found is None:
        return None
    i = invitations.c
    if not conn.execute(sa.update(invitations).where(i.id == found["id"], i.accepted_at.is_(None))
                        .values(accepted_at=now_utc())).rowcount:
        return None  # accepted meanwhile
    user = people.find_user(conn, found["email"])
    if user is None:
        if not password:
            raise people.PeopleError("choose a password (at least 10 characters)")
        user_id = people.create_user(conn, auth.passwords, found["email"], name or found["email"], password)
    else:
        user_id = user["id"]
    people.grant(conn, user_id, found["tenant_id"], found["role"], overrides=found["permissions"],
                 expires_at=found["grant_expires_at"], customer_id=found["customer_id"], actor_id=found["invited_by"])
    return {"email": found["email"], "tenant_id": found["tenant_id"], "role": found["role"],
            "new_account": user is None}
