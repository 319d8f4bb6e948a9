"""The pinned dependency set: make install uses constraints.txt, the venv holds exactly it (with
a current setuptools), and `make audit` audits it against an advisory source or says it cannot."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.metadata import distributions, version
from pathlib import Path
from typing import Any, ClassVar

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
AUDIT = ROOT / "tools" / "audit.py"


def pins() -> dict[str, str]:
    pinned: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, ver = line.partition("==")
            assert sep and ver, f"not an exact pin: {line!r}"
            pinned[canonicalize_name(name)] = ver
    return pinned


def test_every_dependency_is_pinned_and_the_venv_holds_exactly_the_pins() -> None:
    pinned = pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    for spec in wanted:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not in constraints.txt: run make constraints"
        assert req.specifier.contains(pinned[name]), f"{name}=={pinned[name]} breaks {spec}"
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in distributions()
        if canonicalize_name(d.metadata["Name"]) != "crm-telephony"
    }
    differing = {n: (v, pinned.get(n)) for n, v in installed.items() if pinned.get(n) != v}
    assert differing == {}, "the venv differs from constraints.txt (installed, pinned)"


def test_make_install_installs_the_pinned_set() -> None:
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(r"^\$\(VENV\)/\.installed:(.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert rule is not None
    assert "constraints.txt" in rule[1].split()  # a new pin reinstalls
    installs = [line for line in rule[2].splitlines() if "pip install" in line]
    assert installs and all("-c constraints.txt" in line for line in installs)
    assert any("setuptools" in line for line in installs)
    assert re.search(r"^audit:.*\n\t.*tools/audit\.py", makefile, re.M)


def test_setuptools_is_current() -> None:
    # 78.1.1 fixed CVE-2025-47273 (a path traversal in PackageIndex); Python 3.11's venv has 65
    assert Version(version("setuptools")) >= Version("78.1.1")
    assert version("setuptools") == pins()["setuptools"]


# --- make audit ----------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Osv(BaseHTTPRequestHandler):
    """A local OSV API: `advisories` maps a package name to the vulnerability it reports."""

    advisories: ClassVar[dict[str, dict[str, Any]]] = {}

    def do_POST(self) -> None:
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        vuln = self.advisories.get(query["package"]["name"])
        body = json.dumps({"vulns": [vuln]} if vuln else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def osv() -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    advisories: ClassVar[dict[str, dict[str, Any]]] = {}
    handler = type("Handler", (Osv,), {"advisories": advisories})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1/query", advisories
    finally:
        server.shutdown()
        server.server_close()


def audit(osv_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUDIT_OSV_URL": osv_url}
    return subprocess.run(
        [sys.executable, str(AUDIT)], env=env, capture_output=True, text=True, timeout=300
    )


def test_audit_with_no_reachable_source_says_so_and_passes() -> None:
    done = audit(f"http://127.0.0.1:{closed_port()}/v1/query")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NOT AUDITED: no advisory source is reachable" in done.stdout
    assert "AUDIT_OSV_URL" in done.stdout


def test_audit_against_a_local_osv_source(osv: tuple[str, dict[str, dict[str, Any]]]) -> None:
    url, advisories = osv
    clean = audit(url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert f"no known vulnerabilities in {len(pins())} pinned packages" in clean.stdout
    advisories["pyjwt"] = {
        "id": "GHSA-test-0001",
        "summary": "forged tokens accepted",
        "affected": [
            {
                "package": {"name": "pyjwt", "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99"}]}],
            }
        ],
    }
    found = audit(url)
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"pyjwt=={pins()['pyjwt']}: GHSA-test-0001 (fixed in: 99)" in found.stdout
    assert "1 known vulnerabilities" in found.stdout
