"""`crm-telephony demo --reset` starts afresh: the demo's own data folder is wiped, nothing else."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from crm_core.embedded import default_data_dir
from tests.ports import free_port
from tests.web.test_cli_lifecycle import answers, wait_until
from web.cli import build_parser
from web.demo import DEMO_MARK, ResetRefused, reset_demo
from web.settings import Settings


def _settings(data_dir: Path, database_url: str = "") -> Settings:
    s = Settings()
    s.core.data_dir, s.core.database_url = str(data_dir), database_url
    return s


def test_reset_wipes_the_demos_folder_only(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    (demo / "pgdata").mkdir(parents=True)
    (demo / DEMO_MARK).touch()
    (demo / "secret_key").write_text("x")
    assert reset_demo(_settings(demo)) == demo
    assert not demo.exists()
    assert reset_demo(_settings(demo)) == demo  # nothing there: nothing to do

    other = tmp_path / "production"
    (other / "pgdata").mkdir(parents=True)
    with pytest.raises(ResetRefused, match="not a folder the demo made"):
        reset_demo(_settings(other))
    assert (other / "pgdata").exists()
    with pytest.raises(ResetRefused, match="DATABASE_URL"):
        reset_demo(_settings(demo, "postgresql://u:p@db/crm"))


def test_reset_refuses_while_the_demos_database_runs(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    (demo / "pgdata").mkdir(parents=True)
    (demo / DEMO_MARK).touch()
    (demo / "pgdata" / "postmaster.pid").write_text(f"{os.getpid()}\n/some/dir\n")
    with pytest.raises(ResetRefused, match="still runs"):
        reset_demo(_settings(demo))
    assert (demo / "pgdata").exists()


def test_the_default_demo_folder_may_be_reset_and_the_flag_parses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # made by a demo of before the mark: the demo's own folder by its name
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    demo = default_data_dir() / "demo"
    (demo / "pgdata").mkdir(parents=True)
    assert reset_demo(_settings(demo)) == demo and not demo.exists()
    assert build_parser().parse_args(["demo", "--reset"]).reset is True
    assert build_parser().parse_args(["demo"]).reset is False


def _start_demo(data_dir: Path, http: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": "",
        "DATA_DIR": str(data_dir),
        "HTTP_PORT": str(http),
        "AGI_PORT": str(free_port()),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "web.cli", "demo", "--speed", "0.01", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def _post(url: str, data: bytes, headers: dict[str, str]) -> dict[str, object]:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, object] = json.loads(response.read())
        return body


def _clients(base: str) -> list[str]:
    token = _post(
        f"{base}/api/auth/token",
        b"username=admin&password=demo-admin",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(f"{base}/api/clients?q=Reset", headers=auth)
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    items = body["items"] if isinstance(body, dict) else body
    if not items:
        _post(
            f"{base}/api/clients",
            json.dumps({"name": "Reset Me"}).encode(),
            {**auth, "Content-Type": "application/json"},
        )
    return [str(c["name"]) for c in items]


def test_demo_reset_starts_from_an_empty_database(tmp_path: Path) -> None:
    http = free_port()
    base = f"http://127.0.0.1:{http}"
    # the first run makes a client; were it not for --reset, the second would find it
    for run, extra in ((1, ()), (2, ("--reset",))):
        log = tmp_path.parent / f"demo-{run}.log"
        demo = _start_demo(tmp_path, http, log, *extra)
        try:
            try:
                wait_until(f"demo run {run} serving", lambda: answers(f"{base}/api/demo/info"), 120)
            except AssertionError:
                raise AssertionError(log.read_text()[-3000:]) from None
            assert (tmp_path / DEMO_MARK).exists()
            assert _clients(base) == [], f"run {run}"
        finally:
            _stop(demo)
        wait_until("stopped", lambda: not (tmp_path / "pgdata" / "postmaster.pid").exists(), 20)
