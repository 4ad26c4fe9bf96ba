"""`storehouse api` as an operator runs it: a real uvicorn process, its proxy-header trust taken
from our TRUST_FORWARDED_FOR setting, never from uvicorn's own defaults."""

import contextlib
import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.api_storefront import ROOT, SECRET, free_port, wait_for
from tests.test_api_http import make_storefront

CHECKOUT = {"package_id": "airalo:nope", "email": "a@b.io"}  # passes the limiter, then 422


@contextlib.contextmanager
def storehouse_api(warehouse_url, tmp_path, **storefront_env):
    """``python -m storehouse.cli api`` on a free port; yields its base URL. Its output (the
    access log among it) goes to ``tmp_path / "api.log"``."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": warehouse_url, "STOREHOUSE_HOME": str(tmp_path / "home"),
           "STOREHOUSE_SHOP_DATABASE_URL": warehouse_url, "STOREHOUSE_SHOP_SECRET_KEY": SECRET,
           "STOREHOUSE_SHOP_WORKER_ENABLED": "false", "STOREHOUSE_SHOP_TENANT_CACHE_S": "0",
           "STOREHOUSE_SHOP_CHECKOUT_BURST": "2", "STOREHOUSE_SHOP_CHECKOUT_RATE_PER_S": "0.01",
           **{f"STOREHOUSE_SHOP_{k.upper()}": str(v) for k, v in storefront_env.items()}}
    env.pop("FORWARDED_ALLOW_IPS", None)
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "api.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([sys.executable, "-m", "storehouse.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)

    def ready() -> bool:
        assert proc.poll() is None, "storehouse api exited"
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
        return False

    try:
        wait_for(ready, 60, "storehouse api to start", every=0.2)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()


def checkouts(url, tenant_id, forwarded_for: list[str]) -> list[int]:
    return [httpx.post(f"{url}/shops/{tenant_id}/checkout", json=CHECKOUT, timeout=10,
                       headers={"X-Forwarded-For": xff}).status_code for xff in forwarded_for]


def test_rotating_x_forwarded_for_does_not_bypass_the_checkout_limit(warehouse_url, engine, tenant_id, tmp_path):
    make_storefront(engine, tenant_id)
    with storehouse_api(warehouse_url, tmp_path) as url:
        # Uvicorn's own default would believe these from 127.0.0.1 and give each "address" a budget.
        codes = checkouts(url, tenant_id, [f"198.51.100.{i}" for i in range(5)])
    assert codes == [422, 422, 429, 429, 429]


@pytest.mark.parametrize("proxies", [1, 2])
def test_behind_a_trusted_proxy_the_limit_follows_the_forwarded_address(warehouse_url, engine, tenant_id, tmp_path,
                                                                        proxies):
    make_storefront(engine, tenant_id)
    ours = ", 10.1.1.1" * (proxies - 1)  # what our own proxies appended after the first one
    with storehouse_api(warehouse_url, tmp_path, trust_forwarded_for="true", trusted_proxies=proxies) as url:
        # The client writes what it likes on the left; the first proxy appends the address it saw.
        same = checkouts(url, tenant_id, [f"10.0.0.{i}, 203.0.113.9{ours}" for i in range(4)])
        others = checkouts(url, tenant_id, [f"192.0.2.7, 198.51.100.{i}{ours}" for i in range(3)])
    assert same == [422, 422, 429, 429]
    assert others == [422, 422, 422]  # each client the proxy saw has its own budget


@pytest.mark.parametrize("proxies, client", [(1, "10.9.9.9"), (2, "6.6.6.1")])
def test_the_access_log_names_the_client_the_rate_limits_use(warehouse_url, tmp_path, proxies, client):
    """Uvicorn's access log must not believe the entry the client wrote (the leftmost) while the
    limiter takes the one ``trusted_proxies`` places from the right: both name the same client."""
    with storehouse_api(warehouse_url, tmp_path, trust_forwarded_for="true", trusted_proxies=proxies) as url:
        headers = {"X-Forwarded-For": "1.2.3.4, 6.6.6.1, 10.9.9.9"}
        assert httpx.get(f"{url}/healthz?probe=xff", headers=headers, timeout=10).status_code == 200
        wait_for(lambda: b"probe=xff" in (tmp_path / "api.log").read_bytes(), 10, "the access log line")
    line = next(x for x in (tmp_path / "api.log").read_text().splitlines() if "probe=xff" in x)
    assert client in line, line
    assert not {"1.2.3.4", "6.6.6.1", "10.9.9.9"} - {client} & set(line.replace(":", " ").split()), line


def test_without_trust_the_access_log_names_the_peer(warehouse_url, tmp_path):
    with storehouse_api(warehouse_url, tmp_path) as url:
        headers = {"X-Forwarded-For": "6.6.6.1"}
        assert httpx.get(f"{url}/healthz?probe=peer", headers=headers, timeout=10).status_code == 200
        wait_for(lambda: b"probe=peer" in (tmp_path / "api.log").read_bytes(), 10, "the access log line")
    line = next(x for x in (tmp_path / "api.log").read_text().splitlines() if "probe=peer" in x)
    assert "127.0.0.1" in line and "6.6.6.1" not in line, line
