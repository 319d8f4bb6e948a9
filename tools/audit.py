"""`make audit`: pip-audit over the pinned set (constraints.txt) against an advisory source.

The source, first found answering a short probe (a machine cut off from the network must hear
so in seconds, not after pip-audit's retries):
- AUDIT_OSV_URL when set: an OSV API, e.g. a mirror kept inside the company network; only it
  is tried then, so an audit meant to be local never leaks the package list elsewhere;
- else the public OSV API, then PyPI's per-release JSON (pip-audit's default service; a PyPI
  mirror that serves packages but not that JSON is no advisory source).
Nothing answering: it says plainly that nothing was audited, and exits 0. Exit 1 only when
vulnerabilities were found; an audit that could not finish says so and exits 0 as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
PUBLIC_OSV = "https://api.osv.dev/v1/query"
PYPI = "https://pypi.org/pypi"
PROBE_TIMEOUT = float(os.environ.get("AUDIT_PROBE_TIMEOUT", "5"))


def _fetch(request: urllib.request.Request) -> Any:
    with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT) as response:
        return json.loads(response.read() or b"{}")


def osv_answers(url: str) -> str | None:
    """None if the OSV API at `url` answers a query, else why not."""
    query = {"package": {"name": "pip", "ecosystem": "PyPI"}, "version": "1.0"}
    request = urllib.request.Request(
        url, json.dumps(query).encode(), {"Content-Type": "application/json"}
    )
    try:
        reply = _fetch(request)
    except (OSError, ValueError) as exc:  # URLError, timeouts and refusals are OSErrors
        return str(getattr(exc, "reason", exc))
    return None if isinstance(reply, dict) else "not an OSV reply"


def pypi_answers() -> str | None:
    """None if PyPI's per-release JSON (with its vulnerabilities) answers, else why not."""
    url = f"{PYPI}/pip/{version('pip')}/json"
    try:
        reply = _fetch(urllib.request.Request(url))
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))
    return None if isinstance(reply, dict) and "vulnerabilities" in reply else "no advisories"


def choose_source() -> tuple[list[str] | None, list[str]]:
    """pip-audit's arguments for the first source answering (None: none), and what was tried."""
    tried: list[str] = []
    local = os.environ.get("AUDIT_OSV_URL", "").strip()
    for url in [local] if local else [PUBLIC_OSV]:
        why = osv_answers(url)
        if why is None:
            return ["-s", "osv", "--osv-url", url], tried
        tried.append(f"OSV at {url}: {why}")
    if not local:
        why = pypi_answers()
        if why is None:
            return ["-s", "pypi"], tried
        tried.append(f"PyPI's JSON API at {PYPI}: {why}")
    return None, tried


def report(result: dict[str, Any]) -> int:
    deps = result.get("dependencies", [])
    found = [(d, v) for d in deps for v in d.get("vulns", [])]
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = len(deps) - len(skipped)
    for dep, vuln in found:
        fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
        print(f"  {dep['name']}=={dep['version']}: {vuln['id']} (fixed in: {fixed})")
        if vuln.get("description"):
            print(f"      {vuln['description'][:200]}")
    for dep in skipped:
        print(f"  not audited: {dep['name']}: {dep['skip_reason']}")
    if found:
        print(f"make audit: {len(found)} known vulnerabilities in {audited} packages audited")
        return 1
    if not audited:
        print("make audit: NOT AUDITED: the source audited none of the packages")
        return 0
    print(f"make audit: no known vulnerabilities in {audited} pinned packages")
    return 0


def main() -> int:
    source, tried = choose_source()
    if source is None:
        print("make audit: NOT AUDITED: no advisory source is reachable from here.")
        for line in tried:
            print(f"  tried {line}")
        print("  Point AUDIT_OSV_URL at a reachable OSV API (a local mirror) to audit.")
        return 0
    print(f"make audit: auditing {CONSTRAINTS.name} against {' '.join(source[1:])}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip_audit",
                "-r",
                str(CONSTRAINTS),
                "--no-deps",  # exactly the pinned set: nothing resolved, nothing downloaded
                "--disable-pip",
                "--progress-spinner",
                "off",
                "--timeout",
                "20",
                "-f",
                "json",
                "-o",
                str(out),
                *source,
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode not in (0, 1) or not out.exists():
            print("make audit: NOT AUDITED: pip-audit could not finish:")
            print("  " + (done.stderr.strip().splitlines() or ["(no message)"])[-1])
            return 0
        return report(json.loads(out.read_text()))


if __name__ == "__main__":
    sys.exit(main())
