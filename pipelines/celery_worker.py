"""The Celery workers' entry point: ``celery -A pipelines.celery_worker worker -Q dagster``.

Importing it builds the app from the settings (this module is only ever a process's entry point).
Each worker process executes the Dagster steps the runs hand it, in the code of this repository,
against the instance named in each task (the same DAGSTER_HOME and Dagster database as the runs').
"""

from pipelines.executors import celery_app
from settings import Settings

app = celery_app(Settings())
