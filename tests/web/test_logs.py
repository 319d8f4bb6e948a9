"""Structured logs keep credentials out: tokens in URLs (a websocket's `?token=`) are redacted."""

from __future__ import annotations

import json
import logging

from web.logs import JsonFormatter


def formatted(logger: str, msg: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.getLogger(logger).makeRecord(
        logger, logging.INFO, __file__, 1, msg, args, None, extra=extra
    )
    line: dict[str, object] = json.loads(JsonFormatter().format(record))
    return line


def test_a_websocket_token_in_the_url_is_redacted() -> None:
    # uvicorn's own line for an accepted websocket, and its access log line for a request
    ws = formatted(
        "uvicorn.error",
        '%s - "WebSocket %s" [accepted]',
        "127.0.0.1:50000",
        "/ws?token=eyJhbGciOi.secret.sig&last_seq=5",
    )
    assert ws["msg"] == '127.0.0.1:50000 - "WebSocket /ws?token=[redacted]&last_seq=5" [accepted]'
    access = formatted(
        "uvicorn.access",
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:50001",
        "GET",
        "/api/events?after=3&access_token=abc123",
        "1.1",
        200,
        path="/api/events?access_token=abc123",
    )
    assert "abc123" not in json.dumps(access)
    assert access["msg"] == (
        '127.0.0.1:50001 - "GET /api/events?after=3&access_token=[redacted] HTTP/1.1" 200'
    )
    assert access["path"] == "/api/events?access_token=[redacted]"


def test_other_lines_are_left_alone() -> None:
    line = formatted("crm", "routed %s -> %s", "+79161234567", "101", linkedid="1.2", n=3)
    assert line["msg"] == "routed +79161234567 -> 101"
    assert (line["linkedid"], line["n"]) == ("1.2", 3)
