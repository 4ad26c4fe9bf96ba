"""Assembly: the one ``Definitions`` object, jobs and schedules."""
