"""The 3D-print studio's hourly housekeeping: its tmp files past the retention deleted (all studios in one run).

``studio_tmp_cleanup`` is a job of one op, not of assets: it deletes rows of the API's
``studio_tmp_files`` (an external asset) and objects of the tmp bucket, and produces nothing.
"""

import dagster as dg

from assets.studio_housekeeping import clean_studio_tmp_files


@dg.job(
    name="studio_tmp_cleanup",
    executor_def=dg.in_process_executor,
    description="Studio tmp files (uploads and their G-code) past the retention deleted from storage and the table.",
)
def studio_tmp_cleanup_job():
    clean_studio_tmp_files()


defs = dg.Definitions(
    jobs=[studio_tmp_cleanup_job],
    schedules=[dg.ScheduleDefinition(name="studio_tmp_cleanup_hourly", job=studio_tmp_cleanup_job,
                                      cron_schedule="40 * * * *", execution_timezone="UTC",
                                      default_status=dg.DefaultScheduleStatus.RUNNING,
                                      description="Deletes the studios' tmp files past the retention, hourly.")],
)
