"""What one screen-pop costs the service, whatever else the machine is doing: SQL statements and
the service process's CPU per pop-lane fact (issue 13 item 8).

    .venv/bin/python bench/pop_cost_bench.py [--calls 300] [--known 0.1] [--profile]

End-to-end latency (bench/pop_latency_bench.py) moves by 10x and more with the load of a shared
2-core machine: the pop lane is serial, so once it is saturated queueing dominates every figure.
These two numbers do not move with the load, so a change to the pop's work shows here first.

`--calls` calls (inbound_answered.ami renumbered as in pop_latency_bench, each from its own
caller; `--known` of them, every n-th, from callers whose card and open deal exist) go through
the real tracker; their CallStarted and AgentRinging facts are applied one at a time, each in
its own unit of work in the lane's autocommit sessions, exactly as the pipeline's pop lane
applies a batch of one (no publisher:
the hub's cost is measured by pop_latency_bench). A new caller's card and deal, which the pop
lane leaves to the card lane, are opened right after its CallStarted and measured apart as
"OpenCard" (the card lane's batch of one: the writes, and the card read for call.card_opened).
The first 20% are a warm-up (statement caches).
Printed per fact kind: statements (BEGIN/COMMIT not counted: bench._common.count_statements), CPU ms
(time.process_time of this process: SQLAlchemy, asyncpg, the views) and wall ms. `--profile`
adds a cProfile of the measured part (it inflates CPU about 2x).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import count_statements, embedded_database, pct
from bench.pop_latency_bench import _call_events, _load_calls_recording


def _parse(raw: bytes) -> dict[str, str]:
    event: dict[str, str] = {}
    for line in raw.decode().split("\r\n"):
        name, sep, value = line.partition(": ")
        if sep:
            event.setdefault(name, value)
    return event


async def main() -> None:
    from crm_core.calls.service import identify_caller
    from crm_core.db import make_engine, make_session_factory, unit_of_work
    from telephony.call_pipeline import CallPipeline
    from telephony.facts import AgentRinging, CallStarted
    from telephony.tracker import CallTracker, TrackerConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--known", type=float, default=0.1, help="share of known callers")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    url, _server = embedded_database()
    engine = make_engine(url, pool_size=2)
    statements = count_statements(engine)  # before any connection opens
    sessions = make_session_factory(engine)
    tracker = CallTracker(TrackerConfig())
    pipeline = CallPipeline(
        tracker, sessions, None, region="RU", callback_due=timedelta(minutes=30)
    )
    recording = _load_calls_recording()
    callers = [f"+7916{k:07d}" for k in range(args.calls)]
    step = max(1, round(1 / args.known)) if args.known > 0 else 0
    returning = set(callers[::step]) if step else set()
    known = len(returning)
    for caller in sorted(returning):  # cards with an open deal, as a returning caller has
        async with unit_of_work(sessions) as s:
            await identify_caller(s, caller, None, region="RU", company_numbers=frozenset())
    facts: list[Any] = []
    known_ids: set[str] = set()
    for k, caller in enumerate(callers):
        for _, raw in _call_events(recording, k, str(1000 + k % 500), caller, 1.7e9 + k):
            for f in tracker.feed(_parse(raw), time.time()):
                if isinstance(f, CallStarted | AgentRinging):
                    facts.append(f)
                    if caller in returning:
                        known_ids.add(f.linkedid)

    warmup = len(facts) // 5
    cpu: dict[str, list[float]] = {}
    wall: dict[str, list[float]] = {}
    stmts: Counter[str] = Counter()
    n: Counter[str] = Counter()
    profile = cProfile.Profile()
    for i, fact in enumerate(facts):
        kind = type(fact).__name__
        if isinstance(fact, CallStarted):
            kind += " (known caller)" if fact.linkedid in known_ids else " (new caller)"
        measured = i >= warmup
        s0, c0, w0 = statements[0], time.process_time(), time.perf_counter()
        if measured and args.profile:
            profile.enable()
        async with unit_of_work(pipeline._pop_sessions) as s:  # autocommit, as the lane's
            await pipeline._apply_pop(s, [fact])
        if measured and args.profile:
            profile.disable()
        if measured:
            cpu.setdefault(kind, []).append((time.process_time() - c0) * 1000)
            wall.setdefault(kind, []).append((time.perf_counter() - w0) * 1000)
            stmts[kind] += statements[0] - s0
            n[kind] += 1
        # the card lane's work the pop lane handed on (the lanes are not started here)
        to_open, pipeline._card.pending = pipeline._card.pending, []
        for item in to_open:
            s0, c0, w0 = statements[0], time.process_time(), time.perf_counter()
            async with unit_of_work(sessions) as s:
                await pipeline._apply_card(s, [item])
            if measured:
                kind = "OpenCard (card lane)"
                cpu.setdefault(kind, []).append((time.process_time() - c0) * 1000)
                wall.setdefault(kind, []).append((time.perf_counter() - w0) * 1000)
                stmts[kind] += statements[0] - s0
                n[kind] += 1
    await engine.dispose()

    print(f"{args.calls} calls ({known} known callers), {len(facts) - warmup} pop facts measured")
    for kind in sorted(n):
        print(
            f"  {kind:<30} n={n[kind]:>4}  statements {stmts[kind] / n[kind]:5.1f}"
            f"  CPU ms p50 {pct(cpu[kind], 0.5):6.2f} p90 {pct(cpu[kind], 0.9):6.2f}"
            f"  wall ms p50 {pct(wall[kind], 0.5):6.2f}"
        )
    if args.profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    asyncio.run(main())
