"""The sandbox control routes (``/_sandbox/{NAME}``) every POS fake shares, built once here.

A fake keeps its state in module globals (accounts by key, ``LIMITS``, a rate limiter, a
``WebhookLog``) and hands them to one ``PosControl``, which adds to the fake's ``control``
router what the fake has:

* ``account_collection``: ``POST /{accounts}`` (201, the spec echoed) and ``GET /{accounts}``;
* ``limits_route``: ``PUT /limits`` {name: number}, unknown names ignored, answers the limits;
* ``product_routes``: ``POST {product}/stock`` {quantity} and ``DELETE {product}?hard=false``
  (deactivate; ``hard`` deletes), each telling the fake's webhooks;
* ``account_routes``: ``PUT {account}/webhook`` {url, secret}, ``GET {account}/orders``,
  ``POST {account}/expire-tokens``;
* ``deliveries_route``: ``GET /webhooks``, the webhook delivery log;

and ``reset(*specs)`` restores the defaults and the demo accounts. Path parameters keep each
fake's own names, typed from ``types`` (default ``str``), so a malformed one is FastAPI's 422;
an unknown account or product is 404 ``{"detail": "no <noun> <id>"}``, after the body is
validated (the lookups run in the handlers, not in dependencies).
"""

# No `from __future__ import annotations`: the routes below are closures whose annotations
# (the fake's spec model, path parameter types) FastAPI must read as objects.
import inspect
import re
from typing import Any, Callable

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from sandbox.pos_catalog import Listing, Store, index_of
from sandbox.pos_http import WebhookLog


class Stock(BaseModel):
    quantity: int  # below zero too: a real POS reports an oversold count as negative on hand


class Hook(BaseModel):
    url: str
    secret: str | None = None


def _product_index(store: Store, i: int | None, product_id: Any, live: bool) -> int:
    """`i` when it is a product of `store` (and, if `live`, not deleted), else 404."""
    if i is None or not store.exists(i) or (live and store.listing(i).deleted):
        raise HTTPException(404, f"no product {product_id}")
    return i


def deletion(id_key: str, active_key: str) -> Callable[[Any, Listing, Any, bool], dict]:
    """The reply of a DELETE that answers ``{id_key: product_id, "deleted": hard, active_key: active}``."""
    def reply(ctx: Any, item: Listing, product_id: Any, hard: bool) -> dict:
        return {id_key: product_id, "deleted": hard, active_key: item.active}
    return reply


def _with_path(fn: Callable, path: str, types: dict[str, type], returns: Any = None) -> Callable:
    """Declare `path`'s parameters (typed from `types`, default str) ahead of `fn`'s own, which
    receives them as keyword arguments (``**ids``); `returns` replaces its return annotation (the
    response model)."""
    signature = inspect.signature(fn)
    own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    ids = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=types.get(name, str))
           for name in re.findall(r"{(\w+)}", path)]
    fn.__signature__ = signature.replace(parameters=ids + own,
                                         return_annotation=signature.return_annotation if returns is None else returns)
    return fn


class PosControl:
    """Builds a POS fake's control routes on `router` over its module-level state.

    `make(spec)` builds an account, stored under `key(spec)`; account paths find it by `ident`
    (default: the key), 404 ``no <noun> <id>`` otherwise. `limits`/`defaults`, `limiter` and
    `webhooks` are optional (Portaus has none).
    """

    def __init__(self, router: APIRouter, accounts: dict, make: Callable[[Any], Any], key: Callable[[Any], Any], *,
                 noun: str, ident: Callable[[Any], Any] | None = None, types: dict[str, type] | None = None,
                 limits: dict | None = None, defaults: dict | None = None, limiter: Any = None,
                 webhooks: WebhookLog | None = None) -> None:
        self.router, self.accounts, self.make, self.key, self.noun = router, accounts, make, key, noun
        self.ident, self.types = ident, types or {}
        self.limits, self.defaults, self.limiter, self.webhooks = limits, defaults, limiter, webhooks

    # -- state -----------------------------------------------------------------------------
    def add(self, spec: Any) -> Any:
        self.accounts[self.key(spec)] = account = self.make(spec)
        return account

    def account(self, value: Any) -> Any:
        """The account a path parameter names, else 404."""
        if self.ident is None:
            if value in self.accounts:
                return self.accounts[value]
        else:
            for account in self.accounts.values():
                if self.ident(account.spec) == value:
                    return account
        raise HTTPException(404, f"no {self.noun} {value}")

    def reset(self, *specs: Any) -> None:
        """Default limits, no calls counted, no deliveries, only the demo accounts `specs`."""
        if self.limits is not None:
            self.limits.clear()
            self.limits.update(self.defaults)
        if self.limiter is not None:
            self.limiter.clear()
        if self.webhooks is not None:
            self.webhooks.clear()
        self.accounts.clear()
        for spec in specs:
            self.add(spec)

    # -- routes ----------------------------------------------------------------------------
    def account_collection(self, path: str, model: type[BaseModel], *,
                           listed: Callable[[Any], dict] | None = None) -> None:
        """``POST {path}`` creates (or replaces) an account; ``GET {path}`` lists them (`listed`)."""
        def create(spec: model) -> dict:
            self.add(spec)
            return spec.model_dump()

        def list_all() -> list[dict]:
            return [listed(a) if listed else a.spec.model_dump() for a in self.accounts.values()]

        self.router.add_api_route(path, create, methods=["POST"], status_code=201, name=f"create_{self.noun}")
        self.router.add_api_route(path, list_all, methods=["GET"], name=f"list_{path.strip('/')}")

    def limits_route(self, *, value: type = float, coerce: bool = False,
                     on_change: Callable[[], None] | None = None) -> None:
        """``PUT /limits`` {name: `value`}: known names only; `coerce` casts each to its default's
        type; `on_change` runs after (Shopify empties its bucket)."""
        current, defaults = self.limits, self.defaults

        def set_limits(limits: dict[str, value]) -> dict:
            current.update({k: type(defaults[k])(v) if coerce else v for k, v in limits.items() if k in defaults})
            if on_change:
                on_change()
            return current

        self.router.add_api_route("/limits", set_limits, methods=["PUT"])

    def in_account(self, *, maker: Callable[[str, int], str] | None = None,
                   offset: Callable[[Any], int] | None = None, live: bool = False) -> Callable:
        """A `locate` for ``.../{account}/products/{product}``: the account, its ``store`` and the
        index of a product id made by `maker` (or an integer id at ``offset(account)`` + index),
        404 unless that is a product (`live`: and not deleted)."""
        def locate(value: Any, product_id: Any) -> tuple[Any, Store, int]:
            account = self.account(value)
            store = account.store
            i = index_of(product_id, store.seed, maker) if maker else product_id - offset(account)
            return account, store, _product_index(store, i, product_id, live)
        return locate

    def in_location(self, maker: Callable[[str, int], str]) -> Callable:
        """A `locate` for ``/locations/{location}/products/{product}`` when accounts hold a store per
        location (``account.stores``): ``((account, location_id), store, index)`` of a product id
        made by `maker`, 404 for an unknown location or product."""
        def locate(location_id: Any, product_id: str) -> tuple[tuple[Any, Any], Store, int]:
            for account in self.accounts.values():
                store = account.stores.get(location_id)
                if store is not None:
                    i = _product_index(store, index_of(product_id, store.seed, maker), product_id, False)
                    return (account, location_id), store, i
            raise HTTPException(404, f"no location {location_id}")
        return locate

    def product_routes(self, path: str, locate: Callable[..., tuple[Any, Store, int]],
                       reply: Callable[[Any, Listing], Any], *, notify: Callable[[Any, Listing], None] | None = None,
                       notify_delete: Callable[[Any, Listing], None] | None = None,
                       deleted: Callable[[Any, Listing, Any, bool], Any] | None = None,
                       reply_type: Any = dict) -> None:
        """``POST {path}/stock`` and ``DELETE {path}``. `locate(*path parameters)` gives ``(ctx,
        store, index)`` (see ``in_account``/``in_location``); after the change `notify(ctx, item)`
        (`notify_delete` for DELETE, default `notify`) tells the webhooks, and the answer is
        `reply(ctx, item)` (for DELETE `deleted(ctx, item, product_id, hard)`, default `reply`)."""
        names = re.findall(r"{(\w+)}", path)
        on_delete = notify_delete or notify

        def change_stock(stock: Stock, **ids):
            ctx, store, i = locate(*(ids[n] for n in names))
            item = store.set_quantity(i, stock.quantity)
            if notify:
                notify(ctx, item)
            return reply(ctx, item)

        def delete_product(hard: bool = False, **ids) -> dict:
            ctx, store, i = locate(*(ids[n] for n in names))
            item = store.deactivate(i, hard=hard)
            if on_delete:
                on_delete(ctx, item)
            return deleted(ctx, item, ids[names[-1]], hard) if deleted else reply(ctx, item)

        self.router.add_api_route(path + "/stock", _with_path(change_stock, path, self.types, reply_type),
                                  methods=["POST"])
        self.router.add_api_route(path, _with_path(delete_product, path, self.types), methods=["DELETE"])

    def account_routes(self, path: str, *, webhook: bool = False, orders: Callable[[Any], list] | None = None,
                       orders_name: str = "orders", expire_tokens: bool = False) -> None:
        """Under `path` (one account): ``PUT /webhook``, ``GET /orders`` (`orders(account)`),
        ``POST /expire-tokens`` (every token of ``account.tokens`` expires)."""
        param = re.findall(r"{(\w+)}", path)[-1]
        if webhook:
            def set_webhook(hook: Hook, **ids) -> dict:
                self.account(ids[param]).webhook = hook.model_dump()
                return hook.model_dump()
            self.router.add_api_route(path + "/webhook", _with_path(set_webhook, path, self.types),
                                      methods=["PUT"])
        if orders:
            def list_orders(**ids) -> list[dict]:
                return orders(self.account(ids[param]))
            self.router.add_api_route(path + "/orders", _with_path(list_orders, path, self.types),
                                      methods=["GET"], name=orders_name)
        if expire_tokens:
            def expire(**ids) -> dict:
                account = self.account(ids[param])
                account.tokens = {t: 0.0 for t in account.tokens}
                return {"expired": len(account.tokens)}
            self.router.add_api_route(path + "/expire-tokens", _with_path(expire, path, self.types),
                                      methods=["POST"], name="expire_tokens")

    def deliveries_route(self) -> None:
        """``GET /webhooks``: every webhook delivery so far, with its attempts and answers."""
        def deliveries() -> list[dict]:
            return self.webhooks.entries()
        self.router.add_api_route("/webhooks", deliveries, methods=["GET"])
