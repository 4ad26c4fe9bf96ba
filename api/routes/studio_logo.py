"""The studio's logo (``studio.manage``): the body is the image itself (PNG, JPEG or SVG, up to
1 MiB), its ``Content-Type`` says which; checked by ``resources.storage.uploads.check_logo``.

Request bodies are capped far lower for the rest of the API; ``body_up_to`` gives this route its
own allowance in ``api.middleware.BodyLimitMiddleware`` (``api.uploads``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request

from api.deps import EngineDep, STUDIO_ONLY, StorageDep, StorageSettingsDep
from api.problems import problem_responses
from api.routes.studio_staff import staff
from api.staff import STAFF_RESPONSES, require
from api.uploads import body_up_to
from api.studio_schemas import BusinessView
from people.auth import Access
from resources.storage import LOGO_TYPES
from resources.storage.uploads import MAX_LOGO_BYTES, check_logo
from studio.logo import save_logo

router = APIRouter(tags=["studio: staff"], dependencies=STUDIO_ONLY)


async def _body(request: Request) -> bytes:
    return await request.body()


@router.put("/studios/{tenant}/business/logo", response_model=BusinessView,
            responses={**STAFF_RESPONSES, **problem_responses(
                (413, "Larger than the logo's limit"), (415, "Not a PNG, JPEG or SVG image"))},
            openapi_extra={"requestBody": {"required": True, "description": "the logo image", "content": {
                kind: {"schema": {"type": "string", "format": "binary"}} for kind in LOGO_TYPES}}})
@body_up_to(MAX_LOGO_BYTES)
def put_logo(access: Annotated[Access, Depends(require("studio.manage"))], engine: EngineDep, storage: StorageDep,
             rules: StorageSettingsDep, data: Annotated[bytes, Depends(_body)],
             content_type: Annotated[str | None, Header(max_length=255)] = None) -> dict:
    """Set the studio's logo, printed on its quotes and invoices from now on (their PDFs refresh)."""
    kind = check_logo(rules, data, content_type=content_type)
    return save_logo(engine, storage, access.tenant_id, staff(access), data, kind)
