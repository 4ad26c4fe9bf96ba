"""The staff's manual sync page (seed 003's sync dialog), server-rendered from a Jinja2 template
with no build step: sign in (the OAuth2 password flow of ``/auth/token``), pick a tenant, press
Sync (shown only where the role holds ``sync.manual``), optionally in recovery mode with a date
range, and watch the progress bar and statistics cards fill as the run goes.

The page itself holds no data, so it is public; everything it shows comes from the staff API
with the signed-in user's bearer token, which a few lines of plain JavaScript keep in this tab's
``sessionStorage``. The progress arrives as the sync's Server-Sent Events, read with ``fetch()``
(``EventSource`` cannot send the ``Authorization`` header).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from syncing.progress import MX_STEPS
from warehouse.sync_progress import RECOVERY_LIMIT

router = APIRouter(tags=["staff page"])
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
# The statistics cards: (stats key, label), as the seed's "Comprehensive Statistics Display".
CARDS = [
    ("payments_read", "Payments read"), ("payments_new", "New"), ("payments_updated", "Updated"),
    ("invoices_fetched", "Invoices fetched"), ("linkage_rate", "Invoice linkage"), ("api_calls", "API calls"),
    ("calls_per_transaction", "Calls per transaction"), ("quarantined", "Quarantined"), ("errors", "Errors"),
]


@router.get("/staff", response_class=HTMLResponse, include_in_schema=False)
def staff_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "staff_sync.html", {
        "steps": MX_STEPS, "cards": CARDS, "recovery_limit": RECOVERY_LIMIT},
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                 "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                            "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"})
