"""Shopify REST list queries, for ``sandbox.shopify``: cursor paging and ``updated_at`` bounds.

``limit`` (default 50, at most ``max_limit``) and an opaque ``page_info`` cursor announced in
the ``Link`` header (``rel="previous"``/``rel="next"``), absent when there is a single page.
With ``page_info`` only ``limit``/``fields`` may be sent: the filters travel inside the cursor
(base64 JSON of shop, direction, edge id and filters); a tampered cursor is 400, and so is an
unparseable ``updated_at_min``/``updated_at_max``.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

from fastapi import Request, Response
from starlette.responses import JSONResponse

from sandbox.pos_catalog import parse_ms
from sandbox.pos_http import Reject


def _invalid(errors: dict) -> Reject:
    return Reject(JSONResponse({"errors": errors}, 400))


def read_page(request: Request, shop: str, filters: tuple[str, ...], max_limit: float) -> tuple[int, dict, dict | None]:
    """(limit, filters, cursor) from the query; filters ride inside page_info once paging."""
    q = request.query_params
    try:
        limit = int(q.get("limit", 50))
    except ValueError:
        raise _invalid({"limit": ["Invalid value."]})
    if not 1 <= limit <= max_limit:
        raise _invalid({"limit": [f"must be between 1 and {int(max_limit)}"]})
    if "page_info" not in q:
        return limit, {k: q[k] for k in filters if k in q}, None
    if set(q) - {"page_info", "limit", "fields"}:
        raise _invalid({"page_info": ["cannot be combined with other filter parameters"]})
    try:
        cursor = json.loads(base64.urlsafe_b64decode(q["page_info"].encode()))
        assert cursor["shop"] == shop and cursor["dir"] in ("next", "prev")
    except Exception:
        raise _invalid({"page_info": ["Invalid value."]})
    return limit, cursor["filters"], cursor


def page_of(request: Request, response: Response, shop: str, ids: list[int], limit: int, filters: dict,
            cursor: dict | None) -> list[int]:
    """One page of `ids` (ascending) after/before the cursor, announcing neighbours in `Link`."""
    if cursor is None:
        chunk = ids[:limit]
    elif cursor["dir"] == "next":
        chunk = [i for i in ids if i > cursor["id"]][:limit]
    else:
        chunk = [i for i in ids if i < cursor["id"]][-limit:]
    links = []
    has_prev = cursor is not None and chunk and ids[0] < chunk[0]
    for rel, direction, edge, more in (("previous", "prev", chunk[:1], has_prev),
                                       ("next", "next", chunk[-1:], chunk and ids[-1] > chunk[-1])):
        if more:
            token = base64.urlsafe_b64encode(json.dumps({"shop": shop, "dir": direction, "id": edge[0],
                                                         "filters": filters}).encode()).decode()
            links.append(f'<{request.url.replace(query=urlencode({"limit": limit, "page_info": token}))}>; rel="{rel}"')
    if links:
        response.headers["Link"] = ", ".join(links)
    return chunk


def updated_bounds(filters: dict) -> tuple[int | None, int | None]:
    """Epoch ms of ``updated_at_min`` and ``updated_at_max`` (None where absent)."""
    bounds = []
    for key in ("updated_at_min", "updated_at_max"):
        ms = parse_ms(filters[key]) if key in filters else None
        if key in filters and ms is None:
            raise _invalid({key: ["Invalid value."]})
        bounds.append(ms)
    return bounds[0], bounds[1]
