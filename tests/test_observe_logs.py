"""JSON logs: a real ``storehouse api`` process's lines carry their request's id and no order token;
a Dagster sync run's lines carry its run id, job and tenant partition (``settings.logs``)."""

import contextlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys

import dagster as dg
import httpx
import pytest

from assets.partitions import mx_merchant_partitions
from assets.transactions import mx_assets
from resources.dagster_resources import MxMerchantResource
from settings.logs import REQUEST_ID, json_handler
from tests.api_storefront import ROOT, SECRET, wait_for
from tests.test_api_http import make_storefront
from tests.test_mx_sync import connect, make_merchant

PORTS = range(9180, 9200)  # this suite's share of the machine's ports


def port_in_range() -> int:
    for port in PORTS:
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            return port
    pytest.skip(f"no free port in {PORTS}")


@contextlib.contextmanager
def json_api(warehouse_url, tmp_path):
    """``storehouse api`` with ``STOREHOUSE_LOG_FORMAT=json``; yields (base URL, path of its output)."""
    port, out = port_in_range(), tmp_path / "api.log"
    env = {**os.environ, "DATABASE_URL": warehouse_url, "STOREHOUSE_HOME": str(tmp_path / "home"),
           "STOREHOUSE_SHOP_DATABASE_URL": warehouse_url, "STOREHOUSE_SHOP_SECRET_KEY": SECRET,
           "STOREHOUSE_SHOP_WORKER_ENABLED": "false", "STOREHOUSE_SHOP_TENANT_CACHE_S": "0",
           "STOREHOUSE_SHOP_PROVIDER_TIMEOUT_S": "2", "STOREHOUSE_LOG_FORMAT": "json"}
    url = f"http://127.0.0.1:{port}"
    with open(out, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "storehouse.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            assert proc.poll() is None, f"storehouse api exited:\n{out.read_text()}"
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
            return False

        try:
            wait_for(ready, 60, "storehouse api to start", every=0.2)
            yield url, out
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def json_lines(text: str) -> list[dict]:
    """Every line that is a JSON object (the CLI's own banner before the app starts is not)."""
    found = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict):
                found.append(doc)
    return found


def test_api_lines_are_json_with_the_request_id_and_no_token(warehouse_url, engine, tenant_id, tmp_path):
    make_storefront(engine, tenant_id)  # its Stripe (127.0.0.1:9) refuses: checkout logs a warning
    with json_api(warehouse_url, tmp_path) as (url, out):
        given = httpx.post(f"{url}/shops/{tenant_id}/checkout", json={"package_id": "airalo:jp-7", "email": "a@b.io"},
                           headers={"X-Request-ID": "lb-4f2a:77"}, timeout=30)
        made = httpx.get(f"{url}/shops/{tenant_id}/orders/ord_nope?token=s3cr3t-Tok3n", timeout=10,
                         headers={"X-Request-ID": "no spaces allowed"})
        long = httpx.get(f"{url}/healthz", headers={"X-Request-ID": "x" * 129}, timeout=10)
        wait_for(lambda: out.read_text().count('"uvicorn.access"') >= 4, 10, "the access lines")
    assert given.headers["x-request-id"] == "lb-4f2a:77" and given.status_code >= 400
    generated = made.headers["x-request-id"]
    assert len(generated) == 32 and generated != "no spaces allowed" and long.headers["x-request-id"] != "x" * 129
    text = out.read_text()
    assert "s3cr3t" not in text
    lines = json_lines(text)
    app_lines = [d for d in lines if d.get("request_id") == "lb-4f2a:77"]
    # the app's own warning and the access line of the same request, both with its id
    assert {d["logger"] for d in app_lines} >= {"storehouse.commerce.checkout", "uvicorn.access"}, app_lines
    warning = next(d for d in app_lines if d["logger"] == "storehouse.commerce.checkout")
    assert warning["level"] == "WARNING" and "not created" in warning["message"] and warning["ts"].endswith("+00:00")
    [access] = [d for d in lines if d.get("request_id") == generated]
    assert access["logger"] == "uvicorn.access" and access["method"] == "GET" and access["status"] == made.status_code
    assert access["path"] == f"/shops/{tenant_id}/orders/ord_nope?token=…"
    # nothing the server wrote after starting the app is plain text
    started = next(i for i, line in enumerate(text.splitlines()) if line.startswith("{"))
    assert all(line.startswith("{") for line in text.splitlines()[started:] if line.strip()), text


def test_formatter_redacts_tokens_and_keeps_extras_and_tracebacks():
    stream = io.StringIO()
    handler = json_handler(stream)
    logger = logging.getLogger("storehouse.test_observe")
    logger.addHandler(handler)
    logger.propagate = False
    token = REQUEST_ID.set("req-1")
    try:
        logger.warning("posted to %s", "/webhooks/pos/treez?token=a%2Bb&x=1", extra={"tenant": "shop-a"})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        REQUEST_ID.reset(token)
        logger.removeHandler(handler)
        logger.propagate = True
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "posted to /webhooks/pos/treez?token=…&x=1" and "a%2Bb" not in stream.getvalue()
    assert first["request_id"] == "req-1" and first["tenant"] == "shop-a" and first["level"] == "WARNING"
    assert second["exc"].startswith("Traceback") and "ValueError: boom" in second["exc"]


def test_a_sync_runs_lines_carry_its_run_id_and_tenant(sandbox, warehouse, engine, tenant_id, tmp_path):
    """The handler as ``dagster.yaml``'s ``python_logs`` declares it (the same dictConfig)."""
    merchant = make_merchant(sandbox, transactions=30)
    connect(engine, sandbox, tenant_id, merchant)
    out = tmp_path / "run.log"
    python_logs = {"managed_python_loggers": ["storehouse"], "python_log_level": "INFO", "dagster_handler_config": {
        "handlers": {"json": {"class": "logging.FileHandler", "filename": str(out), "formatter": "json",
                              "filters": ["redact_tokens"]}},
        "formatters": {"json": {"()": "settings.logs.JsonFormatter"}},
        "filters": {"redact_tokens": {"()": "settings.logs.RedactTokens"}}}}
    with dg.instance_for_test(overrides={"python_logs": python_logs}) as instance:
        instance.add_dynamic_partitions(mx_merchant_partitions.name, [tenant_id])
        result = dg.materialize(mx_assets, partition_key=tenant_id, instance=instance,
                                resources={"warehouse": warehouse, "mx_merchant": MxMerchantResource()})
    assert result.success
    lines = json_lines(out.read_text())
    assert len(lines) >= 10 and len(lines) == len(out.read_text().splitlines())
    assert {d["run_id"] for d in lines} == {result.run_id}
    assert {d.get("partition") for d in lines} == {tenant_id} and {d["job"] for d in lines} == {"__ephemeral_asset_job__"}
    assert any(d.get("event") == "STEP_SUCCESS" and d.get("step") for d in lines)
    assert merchant["consumer_secret"] not in out.read_text()

