"""Where the sync jobs' steps execute, chosen by one setting when a run starts.

``STOREHOUSE_EXECUTOR=in_process`` (the default): every step in the run's own process, no broker.
``STOREHOUSE_EXECUTOR=celery``: each step is a task on Celery workers (``dagster-celery``) through
``STOREHOUSE_CELERY_BROKER_URL`` (Redis or RabbitMQ); the run's process only orchestrates. The
provider pools hold either way: the run's process claims a pool slot in the instance before it
hands a step to Celery (``dagster_celery``'s loop uses the instance's concurrency context), so the
limits count steps across every worker and machine.

The choice is read when a run starts (``sync_executor``), never when the definitions are imported,
and the workers build their Celery app from the same settings (``celery_app``), so a worker and the
runs that feed it cannot disagree on the broker.
"""

from __future__ import annotations

import dagster as dg

from settings import Settings

CELERY_QUEUE = "dagster"  # dagster-celery's queue: the workers listen on it (`-Q dagster`)


# Celery settings beyond dagster-celery's (which sets a prefetch of one task a process): a worker
# fetches a step only when one of its processes is free, so a worker busy with a long sync holds no
# step back from an idle one (Redis brokers; with RabbitMQ Celery ignores it and warns, and each
# process may hold one step waiting).
CELERY_CONFIG = {"worker_disable_prefetch": True}


def _celery_executor(settings: Settings, retries):
    from dagster_celery.executor import CeleryExecutor

    return CeleryExecutor(retries=retries, broker=settings.celery_broker_url, backend=settings.celery_backend,
                          config_source=CELERY_CONFIG)


def celery_app_args(settings: Settings) -> dict:
    """The arguments of the Celery app, shared by the executor (producer) and the workers."""
    from dagster._core.execution.retries import RetryMode

    return _celery_executor(settings, RetryMode(RetryMode.DISABLED)).app_args()


def celery_app(settings: Settings):
    """The Celery app the workers run (``celery -A pipelines.celery_worker worker``), with the task
    that executes one Dagster step."""
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    app = make_app(celery_app_args(settings))
    create_task(app)
    return app


@dg.executor(
    name="storehouse_sync",
    config_schema=dg.in_process_executor.config_schema,
)
def sync_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """In the run's process by default; on Celery workers when STOREHOUSE_EXECUTOR=celery."""
    settings = Settings()
    if settings.executor != "celery":
        return dg.in_process_executor.executor_creation_fn(init_context)
    from dagster._core.execution.retries import RetryMode

    if init_context.instance.is_ephemeral:
        raise dg.DagsterInvariantViolationError(
            "STOREHOUSE_EXECUTOR=celery needs a persistent Dagster instance (DAGSTER_HOME): the workers "
            "record their steps' events in it")
    return _celery_executor(settings, RetryMode.from_config(init_context.executor_config["retries"]))
