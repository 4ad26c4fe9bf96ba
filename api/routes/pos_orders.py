"""Orders to a shop's POS and Portaus payment intents, for the shop's own systems (server to server).

The caller is the shop's storefront, authenticated by ``Authorization: Bearer <key>`` where the
key is the ``orders_api_key`` in that POS (or Portaus) connection's credentials: one shop's key
opens nothing of another's, and a shop without a key configured takes no orders here.
``order_ref`` (payment ``reference``) is the idempotency key: the same order sent again returns
the stored one (200) instead of placing it twice.
"""

import datetime as dt
import hmac
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ServicesDep, storefront_dep
from api.problems import Problem, problem_responses
from api.schemas import Input
from commerce.pos_orders import PosOrderService
from commerce.storefronts import Storefront
from resources.dagster_resources import PosClientsResource
from resources.pos_orders import FORMATS
from warehouse.tenants import TenantConnection

router = APIRouter(prefix="/shops/{tenant}", tags=["pos orders"])
REF_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
Ref = Annotated[str, Field(pattern=REF_PATTERN, description="your idempotency key")]

# The examples are the demo's (storehouse.demo: its Dutchie dispensary and its Portaus importer,
# with their sandbox order keys), so each request works as sent once the demo has synced them.
PosStorefront = storefront_dep("front-range-dutchie", "the demo's dispensary on Dutchie")
PortausStorefront = storefront_dep("importations-portaus", "the demo's importer on Portaus")
DEMO_ORDER_REF = "web-10045"


def bearer(example: str):
    return Annotated[str | None, Header(alias="Authorization", max_length=512,
                                        description="`Bearer <orders_api_key of the shop's connection>`",
                                        openapi_examples={"demo": {"summary": "the demo shop's order key",
                                                                   "value": f"Bearer {example}"}})]


PosBearer, PortausBearer = bearer("front-range-orders-demo-key"), bearer("portaus-orders-demo-key")


class OrderItem(Input):
    product_id: str = Field(min_length=1, max_length=128, description="the POS's product id (Shopify: the variant id)")
    quantity: int = Field(ge=1, le=1000)


class OrderCustomer(Input):
    id: str = Field(min_length=1, max_length=128, description="the customer's id in the POS")
    birth_date: dt.date | None = Field(None, description="from an ID check; the POS's record wins when it has one")


class PosOrderIn(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"order_ref": DEMO_ORDER_REF, "customer": {"id": "200003", "birth_date": "1973-03-29"},
         "items": [{"product_id": "100006", "quantity": 2}], "note": "pickup at 5pm"}]})

    order_ref: Ref
    provider: Literal[tuple(FORMATS)] | None = Field(  # type: ignore[valid-type]
        None, description="only when the shop has several POS connected")
    customer: OrderCustomer
    items: list[OrderItem] = Field(min_length=1, max_length=50)
    location_id: str | None = Field(None, max_length=64, description="default: a location that holds every line")
    note: str | None = Field(None, max_length=500)


class PosOrderOut(BaseModel):
    order_ref: str
    provider: str
    status: str = Field(description="submitted, rejected, failed or unconfirmed")
    provider_order_id: str | None
    customer_type: str
    total: Decimal | None
    currency: str | None
    grams: Decimal | None
    items: list[dict[str, Any]]
    validation: dict[str, Any]
    submitted_at: dt.datetime | None
    replayed: bool = False


class PaymentIntentIn(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reference": "cart-2291", "items": [{"product_id": "481a669e-b006-4728-aaaf-000000000000", "quantity": 2}],
         "customer": "3000"}]})

    reference: Ref
    items: list[OrderItem] = Field(min_length=1, max_length=50, description="priced from the warehouse")
    customer: str | None = Field(None, max_length=128)
    branch: str | None = Field(None, max_length=16, description="SAQ branch number for pickup")


class PaymentIntentOut(BaseModel):
    reference: str
    intent_id: str
    status: str
    amount: Decimal
    currency: str
    branch: str | None
    redirect_url: str | None
    client_secret: str | None = Field(description="only in the answer that created the intent")
    replayed: bool


def pos_orders_service(request: Request, services: ServicesDep) -> PosOrderService:
    """One service per app, made on first use (stateless, so a rare duplicate is harmless)."""
    service = getattr(request.app.state, "pos_orders", None)
    if service is None:
        # a caller is waiting: fewer, shorter attempts than a background sync would make
        clients = PosClientsResource(timeout_s=10.0, max_attempts=3, backoff_base_s=0.2)
        service = request.app.state.pos_orders = PosOrderService(services.engine, clients)
    return service


PosOrdersDep = Annotated[PosOrderService, Depends(pos_orders_service)]


def authorised(storefront: Storefront, system: str | None, authorization: str | None) -> TenantConnection:
    """The connection the order goes to, once the caller's key for it is checked.

    The key is checked before anything about the shop's connections is said: without one of the
    shop's order keys every answer is the same 401."""
    given = (authorization or "").removeprefix("Bearer ").strip().encode()
    keys = {name: str(c.credentials.get("orders_api_key") or "").encode() for name, c in storefront.connections.items()}
    if not given or not any(key and hmac.compare_digest(given, key) for key in keys.values()):
        raise Problem(401, "unauthorized", "A valid 'Authorization: Bearer <key>' is required.",
                      headers={"WWW-Authenticate": "Bearer"})
    if system is None:
        systems = sorted(s for s in storefront.connections if s in FORMATS)
        if len(systems) != 1:
            raise Problem(422, "provider-required" if systems else "no-pos",
                          f"This shop has {len(systems)} POS connected ({', '.join(systems)}); name one in 'provider'.")
        system = systems[0]
    connection = storefront.connection(system)
    if connection is None:
        raise Problem(404, "no-pos", f"This shop has no {system!r} connected.")
    if not keys.get(system):
        raise Problem(403, "orders-not-enabled", f"This shop takes no orders for {system} through the API.")
    if not hmac.compare_digest(given, keys[system]):
        raise Problem(403, "wrong-key", f"This key is not the one for orders sent to {system}.")
    return connection


# What a route that sends to the POS (or Portaus) can answer besides its success.
SENDING = problem_responses(400, 401, 403, 404, 409, 413, 422, 502)
# ... and a POS connection that lacks what submitting needs (Dutchie without its consumer_key)
PLACING = problem_responses(400, 401, 403, 404, 409, 413, 422, 502, 503)


def order_out(row: dict[str, Any], replayed: bool) -> PosOrderOut:
    return PosOrderOut(**{k: row[k] for k in PosOrderOut.model_fields if k in row}, replayed=replayed)


@router.post("/pos/orders", response_model=PosOrderOut, status_code=201, responses=PLACING)
def place_pos_order(body: PosOrderIn, storefront: PosStorefront, orders: PosOrdersDep, response: Response,
                    authorization: PosBearer = None) -> PosOrderOut:
    """Validate (stock, purchase limit, age) and submit an order to the shop's POS in its own format."""
    connection = authorised(storefront, body.provider, authorization)
    order = {"order_ref": body.order_ref, "customer_ref": body.customer.id, "birth_date": body.customer.birth_date,
             "lines": [i.model_dump() for i in body.items], "location_id": body.location_id, "note": body.note}
    created, row = orders.place(storefront.tenant_id, connection, order)
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return order_out(row, not created)


@router.get("/pos/orders/{order_ref}", response_model=PosOrderOut, responses=problem_responses(401, 403, 404, 422))
def get_pos_order(order_ref: Annotated[str, Path(pattern=REF_PATTERN, openapi_examples={
                      "demo": {"summary": "the example order", "value": DEMO_ORDER_REF}})],
                  storefront: PosStorefront, orders: PosOrdersDep, authorization: PosBearer = None) -> PosOrderOut:
    """An order placed through this API, with its validation and the POS's confirmation id."""
    row = orders.get(storefront.tenant_id, order_ref)
    if row is not None:
        authorised(storefront, row["provider"], authorization)
        return order_out(row, False)
    # the same answer as for a wrong key unless the caller holds one of this shop's keys
    given = (authorization or "").removeprefix("Bearer ").strip().encode()
    keys = [str(c.credentials.get("orders_api_key") or "").encode() for c in storefront.connections.values()]
    if not any(k and hmac.compare_digest(given, k) for k in keys):
        raise Problem(401, "unauthorized", "A valid 'Authorization: Bearer <key>' is required.",
                      headers={"WWW-Authenticate": "Bearer"})
    raise Problem(404, "order-not-found", f"No POS order {order_ref!r} for this shop.")


@router.post("/portaus/payment-intents", response_model=PaymentIntentOut, status_code=201, responses=SENDING)
def create_payment_intent(body: PaymentIntentIn, storefront: PortausStorefront, orders: PosOrdersDep, response: Response,
                          authorization: PortausBearer = None) -> PaymentIntentOut:
    """A Portaus payment intent for these items, created once per reference."""
    connection = authorised(storefront, "portaus", authorization)
    request = {"reference": body.reference, "lines": [i.model_dump() for i in body.items], "customer": body.customer,
               "branch": body.branch}
    created, row, secret = orders.payment_intent(storefront.tenant_id, connection, request)
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return PaymentIntentOut(reference=row["reference"], intent_id=row["intent_id"], status=row["status"],
                            amount=row["amount"], currency=row["currency"], branch=row["branch"],
                            redirect_url=row["redirect_url"], client_secret=secret, replayed=not created)
