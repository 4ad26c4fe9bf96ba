"""The provider registry is the single source: every provider module's PROVIDER is in it, a module
that declares one is found without being listed, and what the rest of the code does per provider
(webhook verification, order formats, failover order, connection specs) follows each module's
declaration (so a new POS touches its module, its fake, its tests and nothing else)."""

from __future__ import annotations

import importlib
import pkgutil
import textwrap

import pytest

import resources.esim as esim
import resources.pos as pos
import resources.pos_orders as pos_orders
import commerce.pos_webhooks as pos_webhooks
import commerce.webhook_tokens as webhook_tokens
from resources import providers, systems
from resources.dagster_resources import PosClientsResource
from resources.http import CallPolicy, HttpSession
from resources.provider import PosProvider, Provider, TokenCache, discover
from sandbox.app import FAKE_MODULES, create_app
from storehouse.demo import DEMO_TENANTS


PACKAGES = ("resources", "resources.pos", "resources.esim")  # where provider modules live


def provider_modules():
    """Every module in the provider packages that has a PROVIDER attribute, found by importing all."""
    found = {}
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.iter_modules(root.__path__):
            if info.ispkg:
                continue
            module = importlib.import_module(f"{package}.{info.name}")
            if isinstance(getattr(module, "PROVIDER", None), Provider):
                found[module.__name__] = module
    return found


def test_every_provider_module_is_registered_and_nothing_else():
    modules = provider_modules()
    assert len(modules) >= 14
    assert sorted(id(m.PROVIDER) for m in modules.values()) == sorted(id(p) for p in providers.PROVIDERS)
    assert len(providers.BY_SYSTEM) == len(providers.PROVIDERS)


@pytest.mark.parametrize("module", sorted(provider_modules()))
def test_a_descriptor_names_its_own_modules_facts(module):
    m = importlib.import_module(module)
    p = m.PROVIDER
    assert p.system == m.SYSTEM and p.connection is m.CONNECTION and p.connection.system == p.system
    assert isinstance(p.policy, CallPolicy) and p.policy.attempts >= 1 and p.policy.timeout_s > 0
    assert p.sandbox, f"{module} names no sandbox mount"
    if p.policy.rate_limit_per_s:
        assert p.rate_limit_scope, f"{module} limits its rate but does not say whether per process or across"


def test_a_module_that_declares_a_provider_is_found_without_being_listed(tmp_path, monkeypatch):
    package = tmp_path / "throwaway_providers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "acme.py").write_text(textwrap.dedent("""
        from resources.connection import ConnectionSpec, Credentials
        from resources.http import CallPolicy
        from resources.provider import PosProvider

        PROVIDER = PosProvider(system="acme", connection=ConnectionSpec("acme", Credentials),
                               policy=CallPolicy(attempts=2), sandbox="acme", priority=2)
    """))
    (package / "zeta.py").write_text(textwrap.dedent("""
        from resources.connection import ConnectionSpec, Credentials
        from resources.http import CallPolicy
        from resources.provider import Provider

        PROVIDER: Provider = Provider(system="zeta", kind="esim", connection=ConnectionSpec("zeta", Credentials),
                                      policy=CallPolicy(), priority=1)
    """))
    (package / "helpers.py").write_text("raise RuntimeError('a module without PROVIDER is never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = discover("throwaway_providers")
    assert [p.system for p in found] == ["zeta", "acme"]  # by priority, then system
    assert isinstance(found[1], PosProvider) and found[1].policy.attempts == 2


def test_the_providers_known_facts_reach_their_readers():
    assert esim.PROVIDERS == ("esimcard", "mobimatter", "airalo")  # the modules' priorities: the failover order
    assert set(pos.POS_SYSTEMS) == {"blaze", "cova", "dutchie", "flowhub", "portaus", "shopify", "treez"}
    assert set(pos_orders.FORMATS) == set(pos.POS_SYSTEMS) - {"portaus"}  # Portaus takes payments, not orders
    assert pos_orders.SELF_DEDUPLICATING == {"cova", "dutchie", "portaus"}
    assert set(pos_webhooks.WEBHOOKS) == set(pos.POS_SYSTEMS) - {"portaus"}
    assert webhook_tokens.SIGNED == {"shopify"} and "treez" in webhook_tokens.UNSIGNED
    assert {"mx_merchant", "stripe", "slack", "treez", "airalo"} <= set(systems.SPECS)
    assert systems.spec_for("flowhub") is importlib.import_module("resources.pos.flowhub").CONNECTION


def test_webhook_verification_and_reading_follow_each_pos_modules_declaration():
    # Flowhub echoes the secret in "key", the others in "authorization" (resources/pos/*.py)
    assert pos_webhooks.verify("flowhub", b"{}", {"key": "s3"}, "s3").signature == "valid"
    missing = pos_webhooks.verify("flowhub", b"{}", {"authorization": "s3"}, "s3")
    assert missing.signature == "missing" and missing.reason.startswith("key header")
    assert pos_webhooks.verify("treez", b"{}", {"authorization": "nope"}, "s3").signature == "invalid"
    event = pos_webhooks.parse("cova", b'{"EventType": "InventoryUpdated", "LocationId": "L-9"}', {})
    assert (event.topic, event.account) == ("InventoryUpdated", "L-9") and event.affects_inventory("cova")
    event = pos_webhooks.parse("treez", b'{"event_type": "CUSTOMER", "dispensary": "other"}', {})
    assert not event.affects_inventory("treez")
    from warehouse.tenants import TenantConnection

    mine = TenantConnection("t", "treez", "http://pos.test", {"apikey": "k"}, {"dispensary": "partnerdemo"})
    assert "other" in pos_webhooks.account_mismatch("treez", event, mine)
    assert pos_webhooks.account_mismatch("treez", event, TenantConnection(
        "t", "treez", "http://pos.test", {"apikey": "k"}, {"dispensary": "other"})) is None


def test_unsigned_webhooks_say_where_the_topic_and_account_are():
    for p in providers.webhook_pos():
        w = p.webhook
        assert w.inventory_topics and w.account_keys and w.secret_header
        assert w.signed or (w.topic_field and w.account_field), p.system


def test_every_pos_demo_account_is_a_demo_tenant_on_its_sandbox_mount():
    registered = {(c.system, c.path, t.tenant_id) for t in DEMO_TENANTS for c in t.connections}
    for p in pos.POS_PROVIDERS:
        assert p.demo is not None, f"{p.system} has no demo account"
        assert (p.system, p.demo.path, p.demo.tenant_id) in registered
        assert p.demo.path.startswith(f"/{p.sandbox}")


def test_every_registered_providers_sandbox_mount_exists_in_the_sandbox_app():
    import sandbox.app as sandbox_app

    names = {importlib.import_module(m).NAME for m in FAKE_MODULES}
    paths = set(create_app().openapi()["paths"])
    for p in providers.PROVIDERS:
        assert p.sandbox in names, f"{p.system}: no fake mounted as /{p.sandbox}"
        assert any(path.startswith(f"/{p.sandbox}/") for path in paths), p.system
    assert "FAKE_MODULES = [" not in open(sandbox_app.__file__).read()  # found, not listed by hand


def test_call_policy_overrides_keep_what_is_not_given():
    policy = CallPolicy(timeout_s=20.0, attempts=5, backoff_base_s=0.5, retry_after_floor_s=0.25)
    changed = policy.with_overrides(attempts=2, timeout_s=None)
    assert (changed.attempts, changed.timeout_s, changed.backoff_base_s, changed.retry_after_floor_s) == (2, 20.0, 0.5, 0.25)
    with pytest.raises(TypeError):
        policy.with_overrides(attempt=2)


def test_a_pos_client_is_built_with_its_providers_policy(sandbox):
    from tests.pos_accounts import new_account
    from warehouse.tenants import TenantConnection

    account = new_account(sandbox.url, "treez", products=1, customers=0)
    connection = TenantConnection("t", "treez", account.base_url, account.credentials, account.options)
    client = pos.client_for(connection)
    try:
        treez = pos.BY_SYSTEM["treez"].policy
        assert client.session.policy == treez and client.session.policy.retry_after_floor_s == 0.25
        assert client.call_stats()["api_retry_budget"] == treez.run_retry_minimum
    finally:
        client.close()
    fast = PosClientsResource(max_attempts=2).client_for(connection)  # the Dagster resource overrides one field
    assert fast.session.policy == treez.with_overrides(attempts=2)
    fast.close()


def test_one_token_cache_renews_early_and_forgets_a_refused_token():
    cache, fetched = TokenCache(margin_s=120), []

    def fetch():
        fetched.append(1)
        return f"token-{len(fetched)}", 600.0

    assert cache.get(("a",), fetch) == cache.get(("a",), fetch) == "token-1"
    cache.invalidate(("a",), "token-other")  # someone else's token: kept
    assert cache.get(("a",), fetch) == "token-1"
    cache.invalidate(("a",), "token-1")
    assert cache.get(("a",), fetch) == "token-2" and len(fetched) == 2
    short = TokenCache(margin_s=120)
    short.get("b", lambda: ("x", 0.5))  # a token shorter than the margin still lives a moment, not zero
    assert short.get("b", lambda: ("y", 0.5)) == "x"


def test_session_without_policy_keeps_its_old_defaults():
    session = HttpSession("fake", "http://provider.test")
    try:
        assert session.policy.attempts == 5 and session.limiter is None
    finally:
        session.close()


def test_the_marts_accept_the_registered_pos_systems_and_esim_providers():
    """The dbt tests accept what the registry holds (run_dbt passes it as vars, tests/test_marts.py
    runs them); the project's defaults, for a plain `dbt` CLI run, are kept equal here."""
    from pathlib import Path

    import yaml

    from resources.dbt import project_vars
    from resources.esim import ESIM_PROVIDERS

    analytics = Path(__file__).parent.parent / "analytics"
    assert project_vars() == {"pos_systems": sorted(pos.POS_SYSTEMS),
                              "esim_providers": sorted(p.system for p in ESIM_PROVIDERS)}
    assert yaml.safe_load((analytics / "dbt_project.yml").read_text())["vars"] == project_vars()
    for folder in ("pos", "orders"):  # no hand list left in a schema
        text = (analytics / "models" / folder / "schema.yml").read_text()
        assert not any(s in text for s in ("[treez,", "[esimcard,")), folder
