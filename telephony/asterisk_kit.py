"""The kit's real Asterisk 22 (asterisk/kit): built once, started on the ports you choose.

For the live tests, `bench/live_agi_bench.py` and `crm-telephony demo --pbx asterisk`. It needs a
source checkout (asterisk/build.sh and asterisk/kit/ beside the packages); `available()` says
whether one is there.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "asterisk" / "build.sh"
RUN = ROOT / "asterisk" / "kit" / "run.sh"


def available() -> bool:
    """A source checkout with the kit (an installed wheel has no asterisk/ folder)."""
    return BUILD.exists() and RUN.exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def build() -> Path:
    """The kit's Asterisk (built once into the cache, then a no-op): its PREFIX."""
    out = subprocess.run(
        ["bash", str(BUILD)], check=True, capture_output=True, text=True, timeout=1800
    )
    binary = Path(out.stdout.strip().splitlines()[-1])
    if binary.name != "asterisk" or not binary.exists():
        raise RuntimeError(f"asterisk/build.sh built no binary: {out.stdout}{out.stderr}")
    return binary.parents[1]


@dataclass
class Kit:
    """One kit Asterisk instance: `start()`, `stop()`, `rx("cli command")`."""

    rundir: Path
    prefix: Path
    ami_port: int = field(default_factory=free_port)
    agi_port: int = field(default_factory=free_port)

    def _run(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run(
            ["bash", str(RUN), *args], capture_output=True, text=True, timeout=timeout
        )
        if out.returncode != 0:
            raise RuntimeError(f"run.sh {' '.join(args)} failed: {out.stdout}{out.stderr}")
        return out.stdout

    def start(self) -> None:
        self._run(
            "start",
            str(self.rundir),
            "--ami-port",
            str(self.ami_port),
            "--agi-port",
            str(self.agi_port),
            "--prefix",
            str(self.prefix),
        )

    def stop(self) -> None:
        self._run("stop", str(self.rundir))

    def kill(self) -> None:
        """kill -9: Asterisk dies mid-call without a word (no Hangup, no Shutdown event)."""
        out = subprocess.run(
            ["bash", str(RUN), "status", str(self.rundir)], capture_output=True, text=True
        )
        if out.returncode == 0:  # "running PID"
            pid = int(out.stdout.split()[-1])
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)

    def rx(self, command: str) -> str:
        return self._run("rx", str(self.rundir), command)

    def running(self) -> bool:
        out = subprocess.run(
            ["bash", str(RUN), "status", str(self.rundir)], capture_output=True, text=True
        )
        return out.returncode == 0
