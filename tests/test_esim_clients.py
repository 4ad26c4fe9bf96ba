"""The eSIM provider clients against the live sandbox: auth, paging, token reuse, 429s, purchases,
and finding a purchase again from another process (MobiMatter by its order id, Airalo by our reference)."""

import datetime as dt
import re
import time

import httpx
import pytest

from resources.dagster_resources import EsimProvidersResource
from resources.esim import PROVIDERS, CompletionRefused, MalformedEsim, OutOfStock
from resources.esim.base import make_esim
from resources.esim.client import PURCHASES, TOKENS
from resources.http import AuthFailed, ServerError
from warehouse.tenants import TenantConnection

CREDENTIALS = {
    "esimcard": {"email": "demo@esimcard.test", "password": "demo-password"},
    "mobimatter": {"merchant_id": "mm-demo-merchant", "api_key": "mm-demo-key"},
    "airalo": {"client_id": "airalo-demo-client", "client_secret": "airalo-demo-secret"},
}
SECRET_FIELD = {"esimcard": "password", "mobimatter": "api_key", "airalo": "client_secret"}
LPA = re.compile(r"^LPA:1\$[A-Za-z0-9.-]+\.[A-Za-z0-9-]+\$[A-Za-z0-9-]+$")
RESOURCE = EsimProvidersResource(backoff_base_s=0.01)


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    return (sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])) % 10 == 0


def connection(sandbox, system: str, credentials: dict | None = None, **options) -> TenantConnection:
    options.setdefault("stock_feed_url", f"/_sandbox/{system}/stock")
    return TenantConnection("t-clients", system, f"{sandbox.url}/{system}", credentials or CREDENTIALS[system], options)


def control(sandbox, system: str, path: str) -> dict:
    return httpx.get(f"{sandbox.url}/_sandbox/{system}/{path}", timeout=10).json()


def package_for(sandbox, system: str, plan_key: str = "jp-1gb-7d") -> str:
    return {key: pid for pid, key in control(sandbox, system, "stock")["plan_keys"].items()}[plan_key]


@pytest.fixture
def fresh(sandbox_reset):
    """A reset sandbox, and no token or purchase remembered from an earlier test."""
    TOKENS.clear()
    PURCHASES.clear()
    return sandbox_reset


@pytest.mark.parametrize("system", PROVIDERS)
def test_wrong_credentials_raise_auth_failed_naming_no_secret(fresh, system):
    creds = {**CREDENTIALS[system], SECRET_FIELD[system]: "wrong-s3cret-value"}
    client = RESOURCE.client_for(connection(fresh, system, creds))
    with pytest.raises(AuthFailed) as caught:
        next(client.iter_packages())
    assert not caught.value.retryable and "wrong-s3cret-value" not in str(caught.value)


@pytest.mark.parametrize(("system", "page_size", "calls"), [("esimcard", 30, 1 + 5), ("mobimatter", 30, 1), ("airalo", 7, 1 + 5)])
def test_packages_page_to_the_end_normalised(fresh, system, page_size, calls):
    client = RESOURCE.client_for(connection(fresh, system, page_size=page_size))
    packages = list(client.iter_packages())
    listed = control(fresh, system, "stock")["plan_keys"]
    assert sorted(p.provider_package_id for p in packages) == sorted(listed)  # every page, nothing twice
    assert client.calls == calls and client.rejected == []  # login/token + pages
    assert all((p.country_code is None) != (p.region is None) and p.unlimited == (p.data_mb is None)
               and p.cost > 0 and p.provider == system for p in packages)
    japan = next(p for p in packages if p.provider_package_id == package_for(fresh, system))
    assert (japan.country_code, japan.data_mb, japan.validity_days, japan.unlimited) == ("JP", 1024, 7, False)


def test_airalo_token_is_fetched_once_and_renewed_when_rejected(fresh):
    for _ in range(3):  # three clients, as three runs in one process would make
        client = RESOURCE.client_for(connection(fresh, "airalo"))
        assert next(client.iter_packages())
        client.close()
    revoke = f"{fresh.url}/_sandbox/airalo/tokens"
    assert httpx.delete(revoke).json()["revoked"] == 1  # one token issued for all three
    client = RESOURCE.client_for(connection(fresh, "airalo"))
    assert len(list(client.iter_packages())) > 100  # the revoked token got a 401, then a new token
    assert httpx.delete(revoke).json()["revoked"] == 1


@pytest.mark.parametrize("system", PROVIDERS)
def test_429_retry_after_is_honoured(fresh, system):
    client = RESOURCE.client_for(connection(fresh, system))
    next(client.iter_packages())  # log in first: the 429 should hit the listing
    httpx.put(f"{fresh.url}/_sandbox/faults/{system}", json={"fail_next_429": 1, "retry_after": 1})
    started = time.perf_counter()
    assert len(list(client.iter_packages())) > 100
    assert time.perf_counter() - started >= 1.0 and client.http.stats.retries == 1


@pytest.mark.parametrize("system", PROVIDERS)
def test_purchase_returns_a_valid_esim_and_its_status(fresh, system):
    package_id = package_for(fresh, system)
    before = control(fresh, system, "stock")["packages"][package_id]
    client = RESOURCE.client_for(connection(fresh, system))
    esim = client.purchase(package_id, "order-1001", email="buyer@example.com")
    assert esim.iccid.startswith("89") and len(esim.iccid) in (19, 20) and luhn_ok(esim.iccid)
    assert LPA.match(esim.activation_code)
    assert esim.activation_code == f"LPA:1${esim.smdp_host}${esim.matching_id}"
    assert control(fresh, system, "stock")["packages"][package_id] == before - 1
    status = client.order_status("order-1001", esim.provider_order_id)
    assert status.state == "completed" and status.esim == esim
    assert client.order_status("order-1001").esim == esim  # known to this process without the id


@pytest.mark.parametrize("system", PROVIDERS)
def test_a_repeated_reference_buys_once_per_process_and_again_at_the_provider(fresh, system):
    package_id = package_for(fresh, system)
    first = RESOURCE.client_for(connection(fresh, system)).purchase(package_id, "order-2002")
    again = RESOURCE.client_for(connection(fresh, system)).purchase(package_id, "order-2002")
    assert again == first and len(control(fresh, system, "orders")["orders"]) == 1  # this process remembers
    PURCHASES.clear()  # a new process: no provider dedupes by our reference, so buying again buys again
    second = RESOURCE.client_for(connection(fresh, system)).purchase(package_id, "order-2002")
    assert second.iccid != first.iccid and len(control(fresh, system, "orders")["orders"]) == 2


@pytest.mark.parametrize("system", PROVIDERS)
def test_out_of_stock_raises_out_of_stock_and_buys_nothing(fresh, system):
    package_id = package_for(fresh, system)
    httpx.put(f"{fresh.url}/_sandbox/{system}/stock/{package_id}", json={"units": 0})
    client = RESOURCE.client_for(connection(fresh, system))
    with pytest.raises(OutOfStock) as caught:
        client.purchase(package_id, "order-3003")
    assert caught.value.kind == "out_of_stock" and not caught.value.retryable
    assert client.http_once.stats.attempts == 1  # a refusal is not retried (MobiMatter's is a 429)
    assert control(fresh, system, "orders")["orders"] == []
    # Only Airalo can be searched by our reference; elsewhere it is unknown, so never "buy again".
    assert client.order_status("order-3003").state == ("not_found" if system == "airalo" else "pending")


@pytest.mark.parametrize("system", PROVIDERS)
def test_a_5xx_on_purchase_is_not_blindly_retried(fresh, system):
    package_id = package_for(fresh, system)
    client = RESOURCE.client_for(connection(fresh, system))
    next(client.iter_packages())  # log in before the fault is armed for the purchase
    httpx.put(f"{fresh.url}/_sandbox/faults/{system}", json={"fail_next_5xx": 1})
    with pytest.raises(ServerError) as caught:
        client.purchase(package_id, "order-4004")
    assert caught.value.retryable and client.http_once.stats.attempts == 1  # the caller decides, knowing it may have gone through
    assert client.purchase(package_id, "order-4004").iccid  # the caller's retry
    assert len(control(fresh, system, "orders")["orders"]) == 1


@pytest.mark.parametrize("system", PROVIDERS)
def test_unknown_order_id_is_not_found(fresh, system):
    client = RESOURCE.client_for(connection(fresh, system))
    assert client.order_status("order-5005", "no-such-order").state == "not_found"


def test_airalo_finds_a_lost_purchase_by_our_exact_reference(fresh):
    package_id = package_for(fresh, "airalo")
    client = RESOURCE.client_for(connection(fresh, "airalo"))
    longer = client.purchase(package_id, "order-6006-10")
    mine = client.purchase(package_id, "order-6006-1")
    PURCHASES.clear()  # another process, which never heard the answers
    found = RESOURCE.client_for(connection(fresh, "airalo", page_size=1)).order_status("order-6006-1")
    assert (found.state, found.esim) == ("completed", mine) and found.esim != longer  # the filter is '%…%'
    assert client.order_status("order-6006-2").state == "not_found"


def mobimatter_order(sandbox, order_id: str) -> dict:
    return next(o for o in control(sandbox, "mobimatter", "orders")["orders"] if o["id"] == order_id)


def test_esimcard_lists_the_esims_bought_since_a_moment_across_pages(fresh):
    package_id = package_for(fresh, "esimcard")
    client = RESOURCE.client_for(connection(fresh, "esimcard"))
    assert client.lists_esims and not RESOURCE.client_for(connection(fresh, "airalo")).lists_esims
    name = next(p.name for p in client.iter_packages() if p.provider_package_id == package_id)
    early = [client.purchase(package_id, f"order-30{i:02d}") for i in range(21)]  # past the first page of 20
    time.sleep(1.1)  # eSIM Card stamps whole seconds
    since = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    late = client.purchase(package_id, "order-3099")
    listed = client.esims_bought_since(since)
    assert [(s.provider_order_id, s.iccid, s.package_name, s.bundles) for s in listed] == \
        [(late.provider_order_id, late.iccid, name, 1)]
    assert listed[0].bought_at.tzinfo is not None and abs((listed[0].bought_at - since).total_seconds()) < 2
    everything = client.esims_bought_since(since - dt.timedelta(hours=1))
    assert {s.iccid for s in everything} == {e.iccid for e in [*early, late]}


def test_mobimatter_hands_over_its_order_id_before_completing_and_resumes_it(fresh):
    package_id = package_for(fresh, "mobimatter")
    client = RESOURCE.client_for(connection(fresh, "mobimatter"))
    created = []
    httpx.put(f"{fresh.url}/_sandbox/faults/mobimatter", json={"fail_next_5xx": 3, "only_path": "/order/complete"})
    with pytest.raises(ServerError):  # completing failed on every try: the order waits, created
        client.purchase(package_id, "order-7007", on_created=lambda order_id: created.append(
            (order_id, mobimatter_order(fresh, order_id)["state"])))
    ((order_id, state_then),) = created
    assert state_then == "created" and client.order_status("order-7007", order_id).state == "created"
    PURCHASES.clear()
    esim = RESOURCE.client_for(connection(fresh, "mobimatter")).resume(order_id)
    assert esim.provider_order_id == order_id and client.order_status("order-7007", order_id).esim == esim
    assert [o["state"] for o in control(fresh, "mobimatter", "orders")["orders"]] == ["completed"]


def test_mobimatter_completion_refused_for_good_cancels_the_order(fresh):
    package_id = package_for(fresh, "mobimatter")
    before = control(fresh, "mobimatter", "stock")["packages"][package_id]
    client = RESOURCE.client_for(connection(fresh, "mobimatter"))
    wallet = f"{fresh.url}/_sandbox/mobimatter/accounts/mm-demo-merchant/fail_orders"
    created = []

    def empty_the_wallet(order_id: str) -> None:  # between the two steps, the wallet runs dry
        created.append(order_id)
        httpx.put(wallet, json={"enabled": True})

    with pytest.raises(CompletionRefused) as caught:
        client.purchase(package_id, "order-8008", on_created=empty_the_wallet)
    assert caught.value.provider_order_id == created[0] and "cancelled" in str(caught.value)
    assert caught.value.kind == "completion_refused" and caught.value.status == 402 and not caught.value.retryable
    assert mobimatter_order(fresh, created[0])["state"] == "cancelled"
    assert control(fresh, "mobimatter", "stock")["packages"][package_id] == before  # no stock held
    assert client.order_status("order-8008", created[0]).state == "failed"


def test_stock_feed_and_its_sold_out_switch(fresh):
    client = RESOURCE.client_for(connection(fresh, "airalo"))
    assert client.stock_levels() == control(fresh, "airalo", "stock")["packages"]
    httpx.put(f"{fresh.url}/_sandbox/airalo/out_of_stock", json={"enabled": True})
    assert set(client.stock_levels().values()) == {0}
    assert RESOURCE.client_for(connection(fresh, "airalo", stock_feed_url=None)).stock_levels() is None


@pytest.mark.parametrize(("iccid", "lpa", "ok"), [
    ("8900000461442300635", "LPA:1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746$1", True),
    ("891000000000009125", "LPA:1$lpa.airalo.com$TEST", True),  # Airalo's sandbox: 18 digits, fails Luhn
    ("89852240810733629810", "LPA:1$smdp.example.com$ABC-123$$1", True),
    ("89852240810733629810", "LPA:1$smdp.example.com$ABC-123$", False),  # trailing '$'
    ("89852240810733629810", "LPA:2$smdp.example.com$ABC-123", False),  # AC_Format must be 1
    ("89852240810733629810", "LPA:1$smdp.example.com$", False),  # no matching id
    ("89852240810733629810", "LPA:1$not a host$ABC", False),
    ("8985224081073362", "LPA:1$smdp.example.com$ABC", False),  # 16 digits
    ("8985224081073362981A", "LPA:1$smdp.example.com$ABC", False),
])
def test_iccid_and_activation_code_validation(iccid, lpa, ok):
    if ok:
        esim = make_esim("airalo", 1, iccid, lpa)
        assert esim.smdp_host == lpa.split("$")[1] and esim.matching_id == lpa.split("$")[2]
    else:
        with pytest.raises(MalformedEsim):
            make_esim("airalo", 1, iccid, lpa)
    with pytest.raises(MalformedEsim):  # the host named separately must agree with the code's
        make_esim("airalo", 1, "891000000000009125", "LPA:1$lpa.airalo.com$TEST", smdp_host="other.example.com")
