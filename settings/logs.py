"""How every process logs: text for people at a terminal, or one JSON object a line for a log
collector (``STOREHOUSE_LOG_FORMAT=json``, as deployed).

One formatter for the API (uvicorn's access and error logs and our own) and for Dagster runs
(through ``python_logs.dagster_handler_config`` in ``dagster.yaml``). A line carries the request
id of the HTTP request it belongs to (``REQUEST_ID``, set by ``api.middleware.RequestIdMiddleware``)
or the run id, job, step and tenant partition of the Dagster run that logged it.

The formatter is a few lines over ``orjson`` (already a dependency, and the fastest encoder we
have) rather than python-json-logger or structlog: the fields are ours to choose, and a log line
costs one dict and one ``orjson.dumps``. Order tokens never reach a log: ``RedactTokens`` sits on
every handler made here (and on uvicorn's access logger, ``api.logs``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
from contextvars import ContextVar
from typing import IO, Any, Literal
from urllib.parse import unquote_plus

import orjson
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REQUEST_ID: ContextVar[str | None] = ContextVar("storehouse_request_id", default=None)
PARAMETER = re.compile(r"([?&])([^=&#\s\"]*)=([^&#\s\"]*)")
# Loggers whose handlers the JSON set-up replaces (uvicorn installs its own text ones); the root
# logger gets the JSON handler beside whatever else is there (pytest's capture, say).
UVICORN_LOGGERS = ("uvicorn", "uvicorn.access")
# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged too.
STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "color_message", "dagster_meta", "dagster_event", "dagster_event_batch_metadata"}


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    log_format: Literal["text", "json"] = Field("text", alias="STOREHOUSE_LOG_FORMAT",
                                                description="text for people, json (one object a line) for collectors")
    log_level: str = Field("INFO", alias="STOREHOUSE_LOG_LEVEL", description="the least severe level logged")


def redact(text: str) -> str:
    """Every ``token`` parameter's value, however its name is spelt (``%74oken`` decodes to it too)."""
    if "=" not in text:
        return text
    return PARAMETER.sub(lambda m: f"{m[1]}{m[2]}=…" if unquote_plus(m[2]) == "token" else m[0], text)


class RedactTokens(logging.Filter):
    """Drops the value of any ``token=`` parameter from a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def _dagster_fields(meta: dict[str, Any]) -> dict[str, Any]:
    tags = meta.get("job_tags") or {}
    event = meta.get("dagster_event")
    fields = {"run_id": meta.get("run_id"), "job": meta.get("job_name"), "step": meta.get("step_key"),
              "partition": tags.get("dagster/partition"),
              "event": getattr(event, "event_type_value", None)}
    if "dagster/asset_partition_range_start" in tags:  # one run over several tenants (a backfill policy)
        fields["partitions"] = [tags["dagster/asset_partition_range_start"], tags.get("dagster/asset_partition_range_end")]
    return {k: v for k, v in fields.items() if v is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the request or run it belongs to,
    fields given with ``extra=``, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None)
        doc: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name,
            "message": redact(meta["orig_message"]) if meta else record.getMessage()}
        request_id = REQUEST_ID.get()
        if request_id is not None:
            doc["request_id"] = request_id
        if meta:
            doc.update(_dagster_fields(meta))
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            doc.update(zip(("client", "method", "path", "http_version", "status"), record.args))
        for key, value in record.__dict__.items():
            if key not in STANDARD and key not in doc:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def json_handler(stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactTokens())
    handler.storehouse_json = True  # type: ignore[attr-defined]  # ours, to replace on a second set-up
    return handler


def use_json(level: str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Log JSON from here on: uvicorn's loggers get only the JSON handler, the root logger gets it
    beside its others (replacing an earlier one of ours). Returns the handler."""
    handler = json_handler(stream)
    for name in ("", *UVICORN_LOGGERS):
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            if name or getattr(old, "storehouse_json", False):
                logger.removeHandler(old)
        logger.addHandler(handler)
    logging.getLogger().setLevel(level)
    return handler


def stop_json(handler: logging.Handler) -> None:
    """Take ``use_json``'s handler off again (tests, mostly)."""
    for name in ("", *UVICORN_LOGGERS):
        logging.getLogger(name).removeHandler(handler)
