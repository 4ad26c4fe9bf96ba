"""Order tokens never reach a log: access-log lines lose the value of any ``token=`` parameter.

Customers open their order (and its QR code) through links carrying ``?token=…``, POS systems
that do not sign post to webhook URLs carrying theirs (``commerce.webhook_tokens``), and a web
server's access log records every request line. The filter sits on uvicorn's access logger,
installed by the app factory, so every way of serving the app (``storehouse api``, uvicorn,
gunicorn's uvicorn workers) logs ``token=…`` instead.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

PARAMETER = re.compile(r"([?&])([^=&#\s\"]*)=([^&#\s\"]*)")
ACCESS_LOGGER = "uvicorn.access"


def redact(text: str) -> str:
    """Every ``token`` parameter's value, however its name is spelt (``%74oken`` decodes to it too)."""
    return PARAMETER.sub(lambda m: f"{m[1]}{m[2]}=…" if unquote_plus(m[2]) == "token" else m[0], text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
