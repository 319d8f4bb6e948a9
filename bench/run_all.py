"""Every bench, one after another, each printing its figures beside its baseline.

make bench     (or: .venv/bin/python bench/run_all.py)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    ("client lookup by phone among 1,000,000 phones (issue 3)", ["phone_lookup.py"]),
    (
        "AMI events/s and memory (issue 4)",
        ["ami_bench.py", "--calls", "2000", "--memory-calls", "20000"],
    ),
    ("AMI event -> screen-pop latency (issue 5)", ["pop_latency_bench.py"]),
    ("websocket fan-out (issue 5)", ["ws_bench.py"]),
    ("FastAGI routing decisions (issue 6)", ["agi_bench.py"]),
    ("FastAGI on a live Asterisk 22: AGI request -> Dial (issue 11)", ["live_agi_bench.py"]),
    (
        "health and FastAGI latency during 20 concurrent wrong sign-ins (hardening, item 1)",
        ["login_storm_bench.py"],
    ),
    ("deals board: 5,000 open deals, 300 managers (issue 14)", ["deals_board_bench.py"]),
    ("a month's reports: 300 agents, 200,000 communications (issue 16)", ["report_bench.py"]),
    ("AMI event -> the supervisors' board in Chromium (issue 16)", ["board_latency_bench.py"]),
]


def main() -> int:
    failed = 0
    for title, argv in BENCHES:
        print(f"\n=== {title} ===", flush=True)
        if not (HERE / argv[0]).exists():
            print(f"(missing: {argv[0]})")
            failed += 1
            continue
        failed += subprocess.call([sys.executable, str(HERE / argv[0]), *argv[1:]]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
