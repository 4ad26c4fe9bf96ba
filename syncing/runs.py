"""Running syncs: the tenant's connections, one ``sync_runs`` row per stream run, breakers, outcomes.

``sync_each`` is the one loop every sync goes through, whatever its provider: for each of the
tenant's connections it opens the stream's ledger row, checks the connection against what its
system declares, makes a client, runs the work (behind the provider's circuit breaker when one
is given), closes the client and the ledger row (success with the counts, or failed with why),
and returns one ``Outcome`` per connection. A provider that fails does not hold up the others;
what to make of the outcomes (fail the run, retry, report stale data) is the caller's choice.
Errors we did not expect (our bugs) are recorded in the ledger and raised at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from resources.breaker import OPEN, CircuitBreaker
from resources.connection import ConnectionConfigError
from resources.http import AuthFailed, ProviderError
from resources.systems import check_connection
from syncing.result import SyncResult
from syncing.state import SyncLedger
from warehouse.secrets import SecretsKeyError
from warehouse.tables.core import sync_runs, tenant_connections
from warehouse.tenants import TenantConnection, get_connection

# Configuration that only a person can fix: the connection's fields, the secrets key. Never retried.
CONFIG_ERRORS = (ConnectionConfigError, SecretsKeyError)
SYNCED, CIRCUIT_OPEN, FAILED = "synced", "circuit_open", "failed"


@dataclass
class Outcome:
    """One connection's part of a run: what it did, or why it did not (its last good rows stay)."""

    system: str
    status: str  # synced, circuit_open, failed
    stats: SyncResult = field(default_factory=SyncResult)
    error: str | None = None
    exc: BaseException | None = None
    last_good: dt.datetime | None = None

    @property
    def duration(self) -> float:
        return self.stats.duration

    @property
    def retryable(self) -> bool:
        """A provider's outage: trying again later may help."""
        return isinstance(self.exc, ProviderError) and self.exc.retryable

    @property
    def auth(self) -> bool:
        """The provider refused the credentials."""
        return isinstance(self.exc, AuthFailed) and self.exc.kind == AuthFailed.kind

    @property
    def config(self) -> bool:
        return isinstance(self.exc, CONFIG_ERRORS)


def connection_of(engine: sa.Engine, tenant_id: str, system: str) -> TenantConnection | None:
    """The tenant's connection to ``system``, checked against what the system declares (raises one
    of ``CONFIG_ERRORS`` when it does not match, or its credentials cannot be decrypted)."""
    with engine.connect() as conn:
        connection = get_connection(conn, tenant_id, system)
    return connection and check_connection(connection)


def connections_of(engine: sa.Engine, tenant_id: str, systems: Sequence[str]) -> list[TenantConnection]:
    """The tenant's connections to any of ``systems`` (by system name), not checked yet."""
    t = tenant_connections.c
    with engine.connect() as conn:
        found = conn.execute(sa.select(t.system).where(t.tenant_id == tenant_id, t.system.in_(systems))
                             .order_by(t.system)).scalars().all()
        return [get_connection(conn, tenant_id, s) for s in found]


def count_rows(engine: sa.Engine, table: sa.Table, tenant_id: str, *where: Any) -> int:
    """The tenant's rows of ``table`` (that match ``where``)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)
                            .where(table.c.tenant_id == tenant_id, *where)).scalar_one()


def last_success(engine: sa.Engine, tenant_id: str, stream: str) -> dt.datetime | None:
    r = sync_runs.c
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(r.finished_at)).where(
            r.tenant_id == tenant_id, r.stream == stream, r.status == "success")).scalar_one()


def is_outage(exc: BaseException) -> bool:
    """Only failures of the provider trip a breaker: not bad credentials, not our bugs."""
    return isinstance(exc, ProviderError) and exc.retryable


def _noop(message: str) -> None:
    pass


def sync_each(engine: sa.Engine, tenant_id: str, run_id: str | None, connections: Sequence[TenantConnection],
              stream_of: Callable[[str], str], client_for: Callable[[TenantConnection], Any],
              work: Callable[[Any, TenantConnection], SyncResult],
              breaker_for: Callable[[str], CircuitBreaker] | None = None,
              warn: Callable[[str], None] = _noop) -> list[Outcome]:
    """Run ``work(client, connection)`` for each connection, each in its own ``sync_runs`` row
    (stream ``stream_of(system)``). ``client_for`` makes the client (closed afterwards, if it can
    be); ``breaker_for`` gives the provider's breaker: while it is open nothing is called and the
    row says ``skipped``. Provider errors and bad configuration become failed outcomes; anything
    else is recorded and raised."""
    outcomes = []
    for connection in connections:
        system, stream = connection.system, stream_of(connection.system)
        breaker = breaker_for(system) if breaker_for else None
        ledger = SyncLedger(engine, tenant_id, stream, run_id)
        if breaker is not None and not breaker.allow():
            error = breaker.current().last_error
            ledger.finish(SyncResult(), "skipped", f"circuit open: {error}")
            outcomes.append(Outcome(system, CIRCUIT_OPEN, error=error, last_good=last_success(engine, tenant_id, stream)))
            warn(f"{system}: circuit open for tenant {tenant_id}; keeping the last good rows of {stream}")
            continue
        client = None
        try:
            client = client_for(check_connection(connection))
            run = (lambda: work(client, connection))  # noqa: E731
            stats = breaker.run(run, counts=is_outage) if breaker is not None else run()
        except (ProviderError, ValueError, *CONFIG_ERRORS) as exc:
            ledger.finish(SyncResult(api_calls=client.calls if client else 0), FAILED, str(exc)[:2000])
            opened = breaker is not None and is_outage(exc) and breaker.current().state == OPEN
            outcomes.append(Outcome(system, CIRCUIT_OPEN if opened else FAILED, SyncResult(
                api_calls=client.calls if client else 0), str(exc), exc, last_success(engine, tenant_id, stream)))
            warn(f"{system}: {stream} for tenant {tenant_id} failed: {exc}; its last good rows are kept")
            continue
        except Exception as exc:
            ledger.finish(SyncResult(), FAILED, f"{type(exc).__name__}: {exc}"[:2000])
            raise
        finally:
            if client is not None and hasattr(client, "close"):
                client.close()
        if hasattr(client, "call_stats"):  # retries spent and the client's retry budget (resources.http.CallPolicy)
            stats.extra.update(client.call_stats())
        ledger.finish(stats)
        outcomes.append(Outcome(system, SYNCED, stats))
    return outcomes
