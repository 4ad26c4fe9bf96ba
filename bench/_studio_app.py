"""The API as ``storehouse api`` serves it, plus one bench-only route: the staff's quote creation
without a document number (same authorisation, body, validation, pricing, client and business
reads, inserts of the quote, its lines and its activity entry, and the answer), for comparison.
Its number is unique by construction (this worker's slot × 1,000,000 + a counter), so it takes no
lock and waits for no other creation: what numbering adds is the whole difference."""

from __future__ import annotations

import itertools
import os
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends

from api.app import create_app
from api.deps import EngineDep
from api.staff import require
from api.studio_schemas import QuoteIn, QuoteView
from people.auth import Access
from studio.activity import Actor, log_activity
from studio.business import get_business
from studio.db import writing
from studio.documents import QUOTE, live_client, priced_items, read, write_items

bare = APIRouter()
SLOT = os.getpid() % 2000 + 1
_counter = itertools.count(1)


@bare.post("/bench/studios/{tenant}/quotes", response_model=QuoteView, status_code=201)
def unnumbered_quote(body: QuoteIn, access: Annotated[Access, Depends(require("studio.manage"))],
                     engine: EngineDep) -> dict:
    actor = Actor("staff", access.principal.user_id)
    with writing(engine) as conn:
        live_client(conn, access.tenant_id, body.client_id)
        business = get_business(conn, access.tenant_id)
        rows, totals = priced_items([i.model_dump() for i in body.items], business["gst_rate"])
        number = SLOT * 1_000_000 + next(_counter)
        quote_id = conn.execute(sa.insert(QUOTE.table).values(
            tenant_id=access.tenant_id, client_id=body.client_id, number=number, document_number=f"B-{number}",
            currency=business["currency"], created_by=actor.user_id, notes=body.notes, valid_until=body.valid_until,
            subtotal=totals.subtotal, discount_total=totals.discount_total, tax_total=totals.tax_total,
            total=totals.total).returning(QUOTE.table.c.id)).scalar_one()
        write_items(conn, QUOTE, access.tenant_id, quote_id, rows)
        log_activity(conn, access.tenant_id, "quote", quote_id, "created", actor, number=f"B-{number}",
                     client_id=body.client_id, total=totals.total, notes=body.notes, valid_until=body.valid_until)
    with engine.connect() as conn:  # read back after the commit, as the numbered route does
        return read(conn, QUOTE, access.tenant_id, quote_id)


def create():
    app = create_app()
    app.include_router(bare)
    return app
