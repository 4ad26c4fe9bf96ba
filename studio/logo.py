"""The studio's logo: one of its own files (``attachments``, ``{tenant}/business/logo.{png|jpg|svg}``),
named on its business details (``logo_key``) and printed on every quote and invoice.

The file is stored before the row names it, so the row never names a file that is not there; a
logo of another type (another key) deletes the old file once the row names the new one. The same
upload again writes the same object and the same row: idempotent. Every
PDF's fingerprint covers the logo's bytes, so a new logo (same key or not) refreshes them all.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from resources.storage import ATTACHMENTS, Storage, StorageError, logo_key
from studio.activity import Actor
from studio.business import get_business, save_business
from studio.db import writing

log = logging.getLogger("storehouse.studio")


def save_logo(engine: sa.Engine, storage: Storage, tenant_id: str, actor: Actor, data: bytes,
              content_type: str) -> dict[str, Any]:
    """Keep ``data`` (checked already: ``resources.storage.uploads.check_logo``) as the studio's
    logo; returns the business details now."""
    key = logo_key(tenant_id, content_type)
    storage.put(ATTACHMENTS, key, data, content_type)
    with writing(engine) as conn:
        before = get_business(conn, tenant_id)["logo_key"]
        details = save_business(conn, tenant_id, actor, logo_key=key)
    if before and before != key:
        try:
            storage.delete(ATTACHMENTS, [before])
        except StorageError as exc:  # an orphan file, named by no row: harmless
            log.warning("studio %s: old logo %s not deleted (%s)", tenant_id, before, type(exc).__name__)
    return details
