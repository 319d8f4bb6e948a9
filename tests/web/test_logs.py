"""Logs: JSON or lines for people, credentials kept out (a websocket's `?token=` is redacted),
no access line for the pages' routine polls."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from web.logs import HumanFormatter, JsonFormatter, QuietAccess, formatter_for


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


def _record(logger: str, msg: str, *args: object, **extra: object) -> logging.LogRecord:
    return logging.getLogger(logger).makeRecord(
        logger, logging.INFO, __file__, 1, msg, args, None, extra=extra
    )


def test_a_person_reads_local_iso_time_level_logger_message_and_fields() -> None:
    record = _record("crm", "routed %s", "+79161234567", linkedid="1.2", n=3, note="two words")
    record.created = 1_800_000_000.25
    line = HumanFormatter().format(record)
    local = datetime.fromtimestamp(1_800_000_000.25).astimezone().isoformat(timespec="milliseconds")
    assert line == f'{local} INFO    crm: routed +79161234567 linkedid=1.2 n=3 note="two words"'
    ws = _record("uvicorn.error", "%s", "WebSocket /ws?token=secret.sig")
    assert "secret" not in HumanFormatter().format(ws)


def test_json_when_asked_or_off_a_terminal_lines_for_people_on_one() -> None:
    assert isinstance(formatter_for("json", tty=True), JsonFormatter)
    assert isinstance(formatter_for("auto", tty=False), JsonFormatter)
    assert isinstance(formatter_for("auto", tty=True), HumanFormatter)
    assert isinstance(formatter_for("human", tty=False), HumanFormatter)


def test_routine_successful_gets_leave_no_access_line() -> None:
    def access(method: str, path: str, status: int) -> logging.LogRecord:
        return _record(
            "uvicorn.access", '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", method, path, "1.1", status
        )

    quiet = QuietAccess()
    root = logging.getLogger()
    level = root.level
    try:
        root.setLevel(logging.INFO)
        assert not quiet.filter(access("GET", "/api/dashboard", 200))
        assert not quiet.filter(access("GET", "/api/health", 200))
        assert quiet.filter(access("GET", "/api/dashboard", 500))
        assert quiet.filter(access("GET", "/api/clients/9", 404))
        assert quiet.filter(access("POST", "/api/calls/originate", 202))
        assert quiet.filter(_record("uvicorn.access", "something else"))
        root.setLevel(logging.DEBUG)  # LOG_LEVEL=DEBUG: every request
        assert quiet.filter(access("GET", "/api/dashboard", 200))
    finally:
        root.setLevel(level)
