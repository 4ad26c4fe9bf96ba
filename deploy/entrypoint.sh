#!/bin/sh
# Every container: write $DAGSTER_HOME/dagster.yaml from the settings (storehouse/instance.py, the
# one place that writes it), then run the service's command.
set -e
python -m storehouse.instance write >/dev/null
exec "$@"
