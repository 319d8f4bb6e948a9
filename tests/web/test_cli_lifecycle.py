"""`crm-telephony serve` as a process: stopping it (SIGTERM, as systemd and docker do) stops the
embedded PostgreSQL it started, instead of leaving it running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ports import free_port


def wait_until(what: str, condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {seconds} s")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_service_stops_its_embedded_database(
    tmp_path: Path, stop: signal.Signals
) -> None:
    http = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": "",
        "DATA_DIR": str(tmp_path),
        "HTTP_PORT": str(http),
        "AGI_PORT": str(free_port()),
        "AMI_ENABLED": "false",
        "OUTBOX_ENABLED": "false",
    }
    service = subprocess.Popen(
        [sys.executable, "-c", "import sys; from web.cli import main; sys.exit(main(['serve']))"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pgdata = tmp_path / "pgdata"
    try:
        wait_until("serving", lambda: answers(f"http://127.0.0.1:{http}/"), 60)
        assert (pgdata / "postmaster.pid").exists()  # the embedded server runs
        service.send_signal(stop)
        service.wait(30)
    finally:
        if service.poll() is None:
            service.kill()
    try:
        wait_until("stopped", lambda: not (pgdata / "postmaster.pid").exists(), 15)
        assert json.loads((pgdata / ".handle_pids.json").read_text()) == []
    finally:  # a failed test must not leave a database server behind either
        pid_file = pgdata / "postmaster.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
