"""The deployment files: they parse, name what CI starts, and agree with the instance's config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from settings import Settings
from storehouse import instance as dagster_instance

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"


def load(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def test_every_yaml_file_parses():
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert {f.relative_to(DEPLOY).as_posix() for f in files} >= {"compose.yaml", "helm/values.yaml", "k8s/api.yaml",
                                                                  "workspace.yaml"}
    for f in files:
        assert load(f), f


def test_compose_names_the_services_ci_starts():
    services = load(DEPLOY / "compose.yaml")[0]["services"]
    script = (REPO / ".ci" / "stack").read_text()
    started = re.search(r'^COMPOSE_SERVICES="([^"]+)"', script, re.M).group(1).split()
    assert set(started) <= set(services)
    assert {"postgres", "redis", "code-server", "webserver", "daemon", "worker", "api"} <= set(services)
    for name in started:  # each started by .ci/stack under that name (the workers as worker-1, worker-2)
        assert re.search(rf"^start {re.escape(name)}(-\d)? ", script, re.M), name
    assert services["worker"]["deploy"]["replicas"] == 2
    # the daemon frees the workspace it replaces every minute (storehouse/daemon.py), in compose and CI alike
    assert services["daemon"]["command"][:4] == ["python", "-m", "storehouse.daemon", "run"]
    assert re.search(r'^start daemon "\$PY" -m storehouse\.daemon run ', script, re.M)
    assert "--workers" in services["api"]["command"] and "2" in services["api"]["command"]
    # one image for every Storehouse service, from deploy/Dockerfile
    ours = {name for name, s in services.items() if "build" in s}
    assert ours == set(services) - {"postgres", "redis"}
    assert {services[n]["build"]["dockerfile"] for n in ours} == {"deploy/Dockerfile"}
    assert (REPO / "deploy" / "Dockerfile").exists()


def test_compose_keeps_secrets_out_of_the_file():
    env = load(DEPLOY / "compose.yaml")[0]["services"]["api"]["environment"]
    assert env["STOREHOUSE_EXECUTOR"] == "celery"
    assert env["STOREHOUSE_DAGSTER_DATABASE_URL"].startswith("postgresql+psycopg2://")
    for key in ("DATABASE_URL", "STOREHOUSE_DAGSTER_DATABASE_URL", "STOREHOUSE_SECRETS_KEY", "STOREHOUSE_SHOP_SECRET_KEY"):
        assert "${" in env[key], f"{key} must come from the environment"


def test_every_service_shares_its_home_and_public_url_and_secrets_stay_out_of_the_image():
    services = load(DEPLOY / "compose.yaml")[0]["services"]
    for name, service in services.items():
        if "build" not in service:
            continue
        # the same files (PDFs a run made, served by the API) and the same links in every service
        assert "storehouse-home:/opt/storehouse" in service["volumes"], name
        assert service["environment"]["STOREHOUSE_SHOP_PUBLIC_URL"].startswith("${STOREHOUSE_SHOP_PUBLIC_URL"), name
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    home = re.search(r"STOREHOUSE_HOME=(\S+)", dockerfile).group(1)
    assert re.search(rf"mkdir -p [^\n]*{home}", dockerfile) and re.search(rf"chown -R storehouse [^\n]*{home}", dockerfile)
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".git", ".env", "**/.env", "deploy/.env"} <= set(ignored)


def test_kubernetes_run_workers_log_json_like_the_instance_config():
    values = load(DEPLOY / "helm" / "values.yaml")[0]
    ours = yaml.safe_load(dagster_instance.python_logs("json"))["python_logs"]
    logs = values["pythonLogs"]
    assert logs["managedPythonLoggers"] == ours["managed_python_loggers"]
    assert logs["pythonLogLevel"] == ours["python_log_level"]
    assert logs["dagsterHandlerConfig"] == ours["dagster_handler_config"]
    assert "STOREHOUSE_STORAGE_BACKEND=s3" in values["runLauncher"]["config"]["k8sRunLauncher"]["envVars"]


def test_helm_values_agree_with_the_instance_config():
    values = load(DEPLOY / "helm" / "values.yaml")[0]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    daemon = values["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    ours = yaml.safe_load(dagster_instance.instance_yaml(Settings(_env_file=None)))
    assert queued["maxConcurrentRuns"] == ours["concurrency"]["runs"]["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"][0]["key"] == ours["concurrency"]["runs"]["tag_concurrency_limits"][0]["key"]
    assert daemon["runRetries"] == {"enabled": True, "maxRetries": ours["run_retries"]["max_retries"],
                                    "retryOnAssetOrOpFailure": False}
    assert values["concurrency"]["pools"]["defaultLimit"] == ours["concurrency"]["pools"]["default_limit"]
    assert values["additionalInstanceConfig"]["auto_materialize"] == ours["auto_materialize"]
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "pipelines.definitions", "-a", "defs"]


def test_the_api_deployment_probes_and_takes_its_secrets_from_a_secret():
    deployment, service = load(DEPLOY / "k8s" / "api.yaml")
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["envFrom"] == [{"secretRef": {"name": "storehouse"}}]
    assert not any(e["name"] in ("DATABASE_URL", "STOREHOUSE_SECRETS_KEY") for e in container.get("env", []))
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("postgres", [False, True])
def test_the_instance_config_loads_in_dagster(tmp_path, monkeypatch, postgres):
    """The written dagster.yaml is one Dagster accepts: the queued coordinator, the caps, run retries
    for infrastructure failures only; PostgreSQL named by variable, never by value."""
    from dagster._core.instance.config import dagster_instance_config

    url = "postgresql+psycopg2://storehouse:s3cret@db.example:5432/dagster"
    if postgres:
        monkeypatch.setenv("STOREHOUSE_DAGSTER_DATABASE_URL", url)
    else:
        monkeypatch.delenv("STOREHOUSE_DAGSTER_DATABASE_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dg"))
    home = dagster_instance.ensure_dagster_home(Settings(_env_file=None))
    text = (home / "dagster.yaml").read_text()
    assert "s3cret" not in text
    config, _ = dagster_instance_config(str(home))
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == dagster_instance.MAX_CONCURRENT_RUNS
    assert ("storage" in config) is postgres
    if postgres:
        assert config["storage"]["postgres"]["postgres_url"] == {"env": "STOREHOUSE_DAGSTER_DATABASE_URL"}


def test_json_logs_reach_the_run_workers_through_the_instance(tmp_path, monkeypatch):
    """With STOREHOUSE_LOG_FORMAT=json the instance hands run workers our JSON formatter (with the
    token filter); with text it adds nothing."""
    import logging

    import dagster as dg

    from settings.logs import JsonFormatter, RedactTokens

    monkeypatch.delenv("STOREHOUSE_DAGSTER_DATABASE_URL", raising=False)
    assert "python_logs" not in dagster_instance.instance_yaml(Settings(_env_file=None), "text")
    (tmp_path / "dagster.yaml").write_text(dagster_instance.instance_yaml(Settings(_env_file=None), "json"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        [json] = [h for h in instance.get_handlers() if isinstance(h.formatter, JsonFormatter)]
    assert isinstance(json, logging.StreamHandler) and any(isinstance(f, RedactTokens) for f in json.filters)


def test_a_hand_written_instance_config_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dagster_instance.ensure_dagster_home(Settings(_env_file=None))
    assert (tmp_path / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_a_dagster_url_without_psycopg2_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("STOREHOUSE_DAGSTER_DATABASE_URL", "postgresql://u@h/dagster")
    with pytest.raises(ValueError, match="postgresql\\+psycopg2"):
        dagster_instance.ensure_dagster_home(Settings(_env_file=None))


def test_the_sync_jobs_choose_their_executor_when_a_run_starts(monkeypatch):
    """In-process by default (no broker); Celery by setting, on a persistent instance only."""
    import dagster as dg
    from dagster_celery.executor import CeleryExecutor

    from dagster._core.definitions.job_base import InMemoryJob

    from pipelines.definitions import build_defs

    job = build_defs().resolve_job_def("mx_merchant_sync")
    assert job.executor_def.name == "storehouse_sync"
    monkeypatch.delenv("STOREHOUSE_EXECUTOR", raising=False)
    with dg.instance_for_test() as instance:
        context = dg.InitExecutorContext(job=InMemoryJob(job), executor_def=job.executor_def,
                                         executor_config={"retries": {"disabled": {}}}, instance=instance)
        assert type(job.executor_def.executor_creation_fn(context)).__name__ == "InProcessExecutor"
        monkeypatch.setenv("STOREHOUSE_EXECUTOR", "celery")
        monkeypatch.setenv("STOREHOUSE_CELERY_BROKER_URL", "redis://broker.example:6379/3")
        executor = job.executor_def.executor_creation_fn(context)
        assert isinstance(executor, CeleryExecutor)
        assert (executor.broker, executor.backend) == ("redis://broker.example:6379/3",) * 2
    with dg.DagsterInstance.ephemeral() as ephemeral:
        context = dg.InitExecutorContext(job=InMemoryJob(job), executor_def=job.executor_def,
                                         executor_config={"retries": {"disabled": {}}}, instance=ephemeral)
        with pytest.raises(dg.DagsterInvariantViolationError, match="persistent"):
            job.executor_def.executor_creation_fn(context)


def test_a_celery_worker_fetches_a_step_only_when_it_has_a_free_process(monkeypatch):
    """No prefetch: a worker busy with a long sync holds no step back from an idle one (.ci/stack
    checks the behaviour on two workers)."""
    from pipelines.executors import celery_app

    monkeypatch.setenv("STOREHOUSE_CELERY_BROKER_URL", "redis://broker.example:6379/3")
    settings = Settings(_env_file=None)
    conf = celery_app(settings).conf
    assert conf.worker_disable_prefetch is True and conf.worker_prefetch_multiplier == 1
    assert conf.broker_url == "redis://broker.example:6379/3"
