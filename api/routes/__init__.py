"""One APIRouter per area; `api.app.ROUTERS` lists them."""
