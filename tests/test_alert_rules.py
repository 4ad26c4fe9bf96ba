"""deploy/prometheus/alerts.yml: every metric it names is one the API's /metrics serves, and
promtool accepts the rules and passes their unit tests (alerts_test.yml)."""

import re
import shutil
import subprocess

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from tests.api_storefront import ROOT, settings_for

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
PROMQL_WORDS = {"by", "without", "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", ""),
            "gauge": ("",), "untyped": ("",)}


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects: what is left once strings, label matchers, ranges,
    grouping clauses, function calls, keywords and numbers are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    tokens = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*(?!\s*\()\b(?!\s*\()", expr)
    return {t for t in tokens if t not in PROMQL_WORDS}


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_metric_names_are_parsed_from_expressions():
    assert metric_names('sum by (tenant) (rate(a_total{x="y"}[5m])) / on (t) b > 0 and c{s=~"a|b"} >= 3') == {
        "a_total", "b", "c"}


def test_every_alert_names_only_metrics_the_api_serves(warehouse_url, engine):
    with TestClient(create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine)) as client:
        text = client.get("/metrics").text
    served = {family.name + suffix for family in text_string_to_metric_families(text)
              for suffix in SUFFIXES[family.type]}
    named = {rule["alert"]: metric_names(rule["expr"]) for rule in rules()}
    assert set(named) >= {"HighPaymentFailureRate", "HighOrderFailureRate", "ProviderBreakerOpen", "ProviderFailing",
                          "StuckOrders", "LowStock", "OutOfStock", "SyncFailing", "SyncFailureRateHigh"}
    missing = {alert: sorted(names - served) for alert, names in named.items() if names - served}
    assert not missing, f"alerts over metrics /metrics does not serve: {missing}"
    assert all(names for names in named.values())
    assert all(rule["labels"]["severity"] in ("info", "warning", "critical") and rule["annotations"]["summary"]
               for rule in rules())


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian's prometheus package has it)")
@pytest.mark.parametrize("command", [["check", "rules", str(RULES)], ["test", "rules", str(TESTS)]],
                         ids=["check", "test"])
def test_promtool(command):
    done = subprocess.run([PROMTOOL, *command], capture_output=True, text=True, timeout=120, cwd=TESTS.parent)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_every_alert_has_a_promtool_test():
    tested = {case["alertname"] for test in yaml.safe_load(TESTS.read_text())["tests"]
              for case in test.get("alert_rule_test", [])}
    assert tested == {rule["alert"] for rule in rules()}
