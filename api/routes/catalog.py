"""The shop's catalog: in-stock eSIM plans with the shop's prices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ServicesDep, StorefrontDep
from api.problems import problem_responses
from api.schemas import Catalog, CatalogItem
from commerce import catalog

router = APIRouter(prefix="/shops/{tenant}", tags=["catalog"])


@router.get("/catalog", response_model=Catalog, responses=problem_responses(
    (404, "No such shop."), (422, "`country` is not a two-letter code.")))
def get_catalog(storefront: StorefrontDep, services: ServicesDep,
                country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$", description="ISO 3166 country code",
                                                     openapi_examples={"JP": {"value": "JP"}})] = None) -> Catalog:
    """Every plan the shop can sell now, one entry per plan, optionally for one country."""
    # The shop's own failover order (its connections may reorder the default): the plan is offered
    # from the provider provisioning will try first.
    priority = [c.system for c in storefront.providers(services.settings.provider_priority)]
    with services.engine.connect() as conn:
        packages = catalog.listing(conn, storefront.tenant_id, priority, country)
    items = [CatalogItem(package_id=p.package_id, name=p.name, country_code=p.country_code, region=p.region,
                         data_mb=p.data_mb, unlimited=p.unlimited, validity_days=p.validity_days, price=p.price,
                         currency=p.currency, low_stock=p.stock_status == "low") for p in packages]
    return Catalog(tenant=storefront.tenant_id, items=items)
