"""Each POS/Portaus client against its live sandbox fake: auth, paging to the end, incremental, 429s."""

import time

import httpx
import jwt
import pytest

from syncing.pos_normalise import product_row
from resources.dagster_resources import PosClientsResource
from resources.http import AuthFailed
from resources.pos import POS_SYSTEMS, PRODUCTS
from tests.pos_accounts import new_account
from tests.test_pos_normalise import EXPECTED, PROVENANCE
from warehouse.syncs import Rejected

FAST = PosClientsResource(max_attempts=4, backoff_base_s=0.05)
# Setting that holds the secret, per system (a wrong one must fail as an auth error, never echoed).
SECRET = {"treez": "apikey", "dutchie": "api_key", "blaze": "developer_key", "flowhub": "key", "cova": "password",
          "shopify": "access_token", "portaus": "jwt_secret"}
# Calls for 230 products in pages of 100: token exchanges and location look-ups included.
PRODUCT_CALLS = {"treez": 4, "dutchie": 1, "blaze": 3, "flowhub": 2, "cova": 4, "shopify": 3, "portaus": 3}
PAGE = {"page_size": 100, "customer_page_size": 20}


def read(client, kind, since=None):
    records = list(getattr(client, f"iter_{kind}")(since))
    assert not [r for r in records if isinstance(r, Rejected)]
    return records


@pytest.mark.parametrize("system", POS_SYSTEMS)
def test_good_credentials_page_to_the_end(sandbox, system):
    account = new_account(sandbox.url, system, products=230, customers=45)
    client = FAST.client_for(account.connection(**PAGE))
    try:
        products = read(client, "products")
        assert client.calls == PRODUCT_CALLS[system]
        assert len(products) == 230 and len({p.source_id for p in products}) == 230
        customers = read(client, "customers")
        assert len(customers) == 45 and len({c.source_id for c in customers}) == 45
        stock = read(client, "inventory")
        assert {i.product_id for i in stock} <= {p.stock_ref or p.source_id for p in products}
        assert all(i.quantity >= 0 for i in stock)
    finally:
        client.close()


@pytest.mark.parametrize("system", POS_SYSTEMS)
def test_bad_credentials_are_an_auth_error_that_names_no_secret(sandbox, system):
    account = new_account(sandbox.url, system, products=5, customers=0)
    wrong = f"wrong-{system}-secret-value-000000000000000000"
    account.credentials = {**account.credentials, SECRET[system]: wrong}
    client = FAST.client_for(account.connection())
    try:
        with pytest.raises(AuthFailed) as err:
            read(client, "products")
        assert wrong not in str(err.value)
    finally:
        client.close()


@pytest.mark.parametrize("system", POS_SYSTEMS)
def test_incremental_reads_return_only_what_changed(sandbox, system):
    account = new_account(sandbox.url, system, products=120, customers=30)
    client = FAST.client_for(account.connection())
    try:
        products = read(client, "products")
        if PRODUCTS not in client.supports_incremental:
            assert system in ("treez", "flowhub")  # no updated-since filter: full reads, deletions by absence
            return
        since = max(p.updated_at for p in products)
        changed = [products[7], products[42]]
        for p in changed:
            account.set_stock(str(p.attributes.get("shopify_product_id", p.source_id)), 3)
        got = {p.source_id for p in read(client, "products", since)}
        boundary = {p.source_id for p in products if p.updated_at == since}  # inclusive filters re-read it
        assert {p.source_id for p in changed} <= got <= {p.source_id for p in changed} | boundary
        people = read(client, "customers")
        if "customers" in client.supports_incremental:
            cut = sorted(c.updated_at for c in people)[len(people) // 2]
            got = {c.source_id for c in read(client, "customers", cut)}
            assert {c.source_id for c in people if c.updated_at > cut} <= got <= {c.source_id for c in people if c.updated_at >= cut}
    finally:
        client.close()


@pytest.mark.parametrize("system", POS_SYSTEMS)
def test_429_with_retry_after_is_waited_out(sandbox_reset, system):
    account = new_account(sandbox_reset.url, system, products=30, customers=0)
    client = FAST.client_for(account.connection())
    httpx.put(f"{sandbox_reset.url}/_sandbox/faults/{system}", json={"fail_next_429": 2, "retry_after": 0.3}).raise_for_status()
    try:
        started = time.perf_counter()
        assert len(read(client, "products")) == 30
        assert client.session.stats.retries == 2
        assert time.perf_counter() - started >= 0.6  # both Retry-After waits were honoured
    finally:
        client.close()


def test_treez_over_limit_without_retry_after_backs_off_and_finishes(sandbox_reset):
    account = new_account(sandbox_reset.url, "treez", products=600, customers=0)
    httpx.put(f"{sandbox_reset.url}/_sandbox/treez/limits", json={"tps": 3}).raise_for_status()
    # deliberately too fast; Treez's own call policy (its backoff, not FAST's), as a run would have it
    client = PosClientsResource().client_for(account.connection(page_size=50, rate_limit_per_s=30))
    try:
        assert len(read(client, "products")) == 600
        assert client.session.stats.retries > 0
    finally:
        client.close()


def test_treez_default_pace_stays_under_the_location_limit(sandbox_reset):
    account = new_account(sandbox_reset.url, "treez", products=600, customers=0)
    client = FAST.client_for(account.connection(page_size=25))  # 24 pages, limit 10 TPS
    try:
        assert len(read(client, "products")) == 600
        assert client.session.stats.retries == 0
    finally:
        client.close()


def test_shopify_slows_down_before_the_bucket_overflows(sandbox_reset):
    httpx.put(f"{sandbox_reset.url}/_sandbox/shopify/limits", json={"bucket_size": 6, "leak_rate": 10}).raise_for_status()
    account = new_account(sandbox_reset.url, "shopify", products=120, customers=0)
    client = FAST.client_for(account.connection(page_size=10, leak_rate=10, bucket_headroom=2))
    try:
        assert len(read(client, "products")) == 120
        assert client.calls == 12 and client.session.stats.retries == 0  # no 429 at all
        assert client.bucket.waited_s > 0
    finally:
        client.close()


@pytest.mark.parametrize("system, control", [("treez", "dispensaries/{d}"), ("cova", "companies/{c}")])
def test_tokens_are_cached_and_renewed_when_expired(sandbox, system, control):
    account = new_account(sandbox.url, system, products=10, customers=0)
    first, second = FAST.client_for(account.connection()), FAST.client_for(account.connection())
    try:
        read(first, "products")
        assert first.calls == 2  # token exchange + one page
        read(second, "products")
        assert second.calls == 1  # the cached token: no exchange
        path = control.format(d=account.credentials.get("dispensary"), c=account.credentials.get("company_id"))
        httpx.post(f"{sandbox.url}/_sandbox/{system}/{path}/expire-tokens").raise_for_status()
        read(second, "products")
        assert second.calls == 1 + 3  # refused, new exchange, retried
    finally:
        first.close(), second.close()


def test_portaus_wraps_the_api_key_in_a_short_lived_signed_jwt(sandbox):
    account = new_account(sandbox.url, "portaus", products=5, customers=3)
    client = FAST.client_for(account.connection())
    try:
        token, ttl = client.fetch_token()
        claims = jwt.decode(token, account.credentials["jwt_secret"], algorithms=["HS256"])
        assert claims["API_KEY"] == account.credentials["api_key"] and claims["exp"] - claims["iat"] == ttl
        assert [b.number for b in client.iter_saq_branches()] and len(read(client, "customers")) == 3
    finally:
        client.close()


def test_dutchie_pages_customers_until_an_empty_page(sandbox):
    account = new_account(sandbox.url, "dutchie", products=5, customers=45)
    client = FAST.client_for(account.connection(customer_page_size=20))
    try:
        assert len(read(client, "customers")) == 45 and client.calls == 4  # 20 + 20 + 5 + []
    finally:
        client.close()


def test_blaze_advances_by_what_came_back_when_it_clamps_the_limit(sandbox):
    account = new_account(sandbox.url, "blaze", products=1200, customers=0)
    client = FAST.client_for(account.connection(page_size=1000))  # Blaze silently serves 500
    try:
        assert len({p.source_id for p in read(client, "products")}) == 1200 and client.calls == 3
    finally:
        client.close()


def test_blaze_change_feed_misses_nothing_when_a_product_changes_mid_read(sandbox):
    account = new_account(sandbox.url, "blaze", products=20, customers=0)
    client = FAST.client_for(account.connection(page_size=5))
    try:
        products = read(client, "products")
        since = max(p.updated_at for p in products)
        time.sleep(0.01)
        ids = sorted(p.source_id for p in products)[:12]
        for k, product_id in enumerate(ids):  # twelve sales, oldest first
            account.set_stock(product_id, 100 + k)
        real, pages = client.session.get_json, []

        def a_sale_lands_after_the_first_page(path, **kwargs):
            body = real(path, **kwargs)
            pages.append(path)
            if len(pages) == 1:
                account.set_stock(ids[0], 7)  # the oldest change becomes the newest: it moves to the feed's end
            return body

        client.session.get_json = a_sale_lands_after_the_first_page
        got = {p.source_id for p in read(client, "products", since)}
        assert set(ids) <= got and len(pages) > 2
    finally:
        client.close()


@pytest.mark.parametrize("system", [s for s in POS_SYSTEMS if s != "portaus"])
def test_golden_product_over_http_normalises_to_the_catalog_row(sandbox, system):
    account = new_account(sandbox.url, system, products=20, customers=0)
    client = FAST.client_for(account.connection())
    try:
        golden = next(p for p in read(client, "products") if p.sku == "CRS-BD-0035")
        row = product_row("t", golden)
        assert {k: v for k, v in row.items() if k not in PROVENANCE} == EXPECTED
        stock = [i for i in read(client, "inventory") if i.product_id in (golden.source_id, golden.stock_ref)]
        assert sum(i.quantity for i in stock) == 24  # 16 + 8 in two lots
        if system in ("flowhub", "cova"):  # lot-tracked: lots, expiry and METRC ids
            assert {(i.lot_id, str(i.expires_on), i.compliance_id) for i in stock} == {
                ("BD-2406-A", "2027-06-30", "1A4FF0300000022000000101"), ("BD-2409-B", "2027-09-30", "1A4FF0300000022000000102")}
        if system == "dutchie":  # one record per package: the lot is the package (here one per batch)
            assert {(i.lot_id, str(i.expires_on), i.compliance_id) for i in stock} == {
                ("1A4FF0300000022000000101", "2027-06-30", "1A4FF0300000022000000101"),
                ("1A4FF0300000022000000102", "2027-09-30", "1A4FF0300000022000000102")}
    finally:
        client.close()
