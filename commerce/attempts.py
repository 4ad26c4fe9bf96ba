"""Provider calls as the provisioning worker records and judges them.

Every purchase is written to ``provisioning_attempts`` as ``started`` *before* the request goes
out; a worker that dies mid-call leaves that row for the next one, which must learn what
happened before it may buy anywhere else. A two-step order's id is written to the row as soon
as the provider creates it (``note_created``), so the next worker can look it up and complete
it. Errors are judged two ways:

* ``ambiguous``: the provider may have acted (a read timeout, a 500, a dropped connection, an
  answer we could not read), or an order it created may still be completed. Buying elsewhere
  could buy twice, so the outcome is checked first.
* ``counts_for_breaker``: the provider is unhealthy (unreachable, 5xx, throttling, refusing our
  credentials), as opposed to refusing this one request (out of stock, invalid).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import sqlalchemy as sa

from commerce.orders import insert_ignore
from commerce.qr import qr_png
from resources.breaker import CircuitOpen
from resources.esim import MalformedEsim, OutOfStock, ProvisionedEsim
from resources.http import (
    AuthFailed,
    ConnectionFailed,
    RateLimited,
    RequestInvalid,
    ServerError,
)
from warehouse.tables.orders import order_esims, provisioning_attempts
from warehouse.types import now_utc

STARTED, SUCCEEDED, FAILED, UNKNOWN, SKIPPED = "started", "succeeded", "failed", "unknown", "skipped"
ABSENT, ABANDONED = "resolved_absent", "abandoned"
UNRESOLVED = (STARTED, UNKNOWN)


def ambiguous(error: BaseException, created: bool = False) -> bool:
    """True when the provider may have carried out the purchase despite the error.

    Once a two-step order exists (``created``), a retryable failure to complete it leaves it
    waiting to be completed later, which is as good as a purchase that may have gone through.
    """
    if created and getattr(error, "retryable", False):
        return True
    if isinstance(error, (OutOfStock, RequestInvalid, AuthFailed, RateLimited, CircuitOpen, MalformedEsim)):
        return False  # refused, throttled before acting, or answered (unusably): we know what happened
    if isinstance(error, ServerError):
        return error.status != 503  # 503: not served; 500/502/504 may have been half done
    if isinstance(error, ConnectionFailed):
        return not isinstance(error.__cause__, (httpx.ConnectError, httpx.ConnectTimeout))
    return True  # a timeout after sending, an unreadable answer, a bug: cannot tell


def counts_for_breaker(error: BaseException) -> bool:
    """True when the error says the provider is unhealthy, not that it refused this request."""
    return not isinstance(error, (OutOfStock, CircuitOpen, RequestInvalid))


def error_class(error: BaseException) -> str:
    return str(getattr(error, "kind", None) or type(error).__name__)[:32]


def start(conn: sa.Connection, order: dict[str, Any], unit: int, provider: str, package_id: str | None,
          reference: str, outcome: str = STARTED, **fields: Any) -> int:
    now = now_utc()
    values = {"tenant_id": order["tenant_id"], "order_id": order["order_id"], "unit": unit, "provider": provider,
              "provider_package_id": package_id, "reference": reference, "outcome": outcome, "started_at": now,
              **fields}
    if outcome != STARTED:
        values.setdefault("finished_at", now)
    return conn.execute(sa.insert(provisioning_attempts).values(**values).returning(provisioning_attempts.c.id)).scalar_one()


def finish(conn: sa.Connection, attempt_id: int, outcome: str, *, latency_ms: float | None = None,
           error: BaseException | None = None, esim: ProvisionedEsim | None = None) -> None:
    values: dict[str, Any] = {"outcome": outcome, "finished_at": now_utc()}
    if latency_ms is not None:
        values["latency_ms"] = round(latency_ms, 2)
    if error is not None:
        values.update(error_class=error_class(error), error=str(error)[:1000])
        bought = getattr(error, "provider_order_id", None)  # sold but unusable: keep it findable
        if bought:
            values["provider_order_id"] = bought[:128]
    if esim is not None:
        # The activation code stays in order_esims: this is an analysts' table.
        values.update(provider_order_id=esim.provider_order_id[:128], iccid=esim.iccid)
    conn.execute(sa.update(provisioning_attempts).where(provisioning_attempts.c.id == attempt_id).values(**values))


def note_created(conn: sa.Connection, attempt_id: int, provider_order_id: str) -> None:
    """Note the order the provider created for this attempt, before it is completed."""
    conn.execute(sa.update(provisioning_attempts).where(provisioning_attempts.c.id == attempt_id)
                 .values(provider_order_id=provider_order_id[:128]))


def for_unit(conn: sa.Connection, order: dict[str, Any], unit: int) -> list[dict[str, Any]]:
    a = provisioning_attempts.c
    rows = conn.execute(sa.select(provisioning_attempts).where(
        a.tenant_id == order["tenant_id"], a.order_id == order["order_id"], a.unit == unit).order_by(a.id)).mappings()
    return [dict(r) for r in rows]


def delivered_units(conn: sa.Connection, tenant_id: str, order_id: str) -> set[int]:
    e = order_esims.c
    return set(conn.execute(sa.select(e.unit).where(e.tenant_id == tenant_id, e.order_id == order_id)).scalars())


def store_esim(conn: sa.Connection, order: dict[str, Any], unit: int, package_id: str, esim: ProvisionedEsim) -> bool:
    """Keep the delivered eSIM with its QR code; a unit already stored is left as it is."""
    return insert_ignore(conn, order_esims, {
        "tenant_id": order["tenant_id"], "order_id": order["order_id"], "unit": unit, "provider": esim.provider,
        "provider_package_id": package_id, "provider_order_id": esim.provider_order_id[:128], "iccid": esim.iccid,
        "activation_code": esim.activation_code, "smdp_host": esim.smdp_host, "matching_id": esim.matching_id,
        "qr_png": qr_png(esim.activation_code), "provisioned_at": now_utc(),
    })


def reference_for(order: dict[str, Any], unit: int) -> str:
    """Our order id is the provider's reference (one per eSIM when an order has several)."""
    return order["order_id"] if order["quantity"] == 1 else f"{order['order_id']}-{unit}"


def past(moment: dt.datetime | None, seconds: float) -> bool:
    return moment is not None and (now_utc() - moment).total_seconds() > seconds
