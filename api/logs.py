"""Order tokens never reach a log, and with ``STOREHOUSE_LOG_FORMAT=json`` every line is JSON.

Customers open their order (and its QR code) through links carrying ``?token=…``, POS systems
that do not sign post to webhook URLs carrying theirs (``commerce.webhook_tokens``), and a web
server's access log records every request line. The filter sits on uvicorn's access logger,
installed by the app factory, so every way of serving the app (``storehouse api``, uvicorn,
gunicorn's uvicorn workers) logs ``token=…`` instead; the JSON handler (``settings.logs``)
carries the same filter for every logger.
"""

from __future__ import annotations

import logging

from settings.logs import LogSettings, RedactTokens, redact, use_json

__all__ = ["ACCESS_LOGGER", "RedactTokens", "install", "redact"]
ACCESS_LOGGER = "uvicorn.access"


def install(log_settings: LogSettings | None = None) -> None:
    """Redact the access log; switch this process's logs to JSON when the settings say so."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
    if log_settings is not None and log_settings.log_format == "json":
        use_json(log_settings.log_level)
