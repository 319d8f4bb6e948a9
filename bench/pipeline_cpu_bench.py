"""What the whole call pipeline costs the service's one event loop, per call, whatever else the
machine is doing: process CPU and SQL statements for every lane (pop, card, live, log).

    .venv/bin/python bench/pipeline_cpu_bench.py [--calls 600] [--rate 20] [--known 0.3]
                                                 [--profile]

Why: a pop waits for whatever else holds the loop when its DialBegin comes in, and on a 2-core
machine most of that is the other lanes' Python (the live lane's calls in progress and agents'
phones, the log lane's call ends): bench/pop_latency_bench.py sees it as the pop's wait in the
queue, moved 10x by other load. CPU per call does not move with the load, so a change to any
lane's work shows here first.

`--calls` calls (inbound_answered.ami renumbered as in pop_latency_bench, one every 1/rate s on
the recording's own timeline, so ~170 overlap at 20/s; `--known` of them from callers whose card
and open deal exist) go through the real tracker into a real CallPipeline (no publisher: the
hub's cost is pop_latency_bench's). Events are fed in timeline order, 50 ms of timeline at a
time, each slice drained before the next (as fast as the machine goes, not in real time). The
first 20% of calls are a warm-up (statement caches). Printed: CPU ms per call (time.process_time
of this process), SQL statements per call, the lanes' batches, and with `--profile` the
functions with the most own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import count_statements, embedded_database
from bench.pop_cost_bench import _parse
from bench.pop_latency_bench import _call_events, _load_calls_recording, make_users

SLICE = 0.05  # seconds of timeline fed before each drain


async def main() -> None:
    from crm_core.calls.service import identify_caller
    from crm_core.db import make_engine, make_session_factory, unit_of_work
    from telephony.call_pipeline import CallPipeline
    from telephony.tracker import CallTracker, TrackerConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--rate", type=float, default=20.0, help="new calls per timeline second")
    parser.add_argument("--known", type=float, default=0.3, help="share of known callers")
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    url, _server = embedded_database()
    await make_users(url, args.operators, 0)
    engine = make_engine(url, pool_size=5)
    statements = count_statements(engine)  # before any connection opens
    sessions = make_session_factory(engine)
    pipeline = CallPipeline(
        CallTracker(TrackerConfig()),
        sessions,
        None,
        region="RU",
        callback_due=timedelta(minutes=30),
        wrapup_seconds=5.0,
    )
    recording = _load_calls_recording()
    callers = [f"+7916{k:07d}" for k in range(args.calls)]
    step = max(1, round(1 / args.known)) if args.known > 0 else 0
    for caller in callers[::step] if step else []:  # a card with an open deal each
        async with unit_of_work(sessions) as s:
            await identify_caller(s, caller, None, region="RU", company_numbers=frozenset())
    timeline: list[tuple[float, int, bytes]] = []
    for k, caller in enumerate(callers):
        ext = str(1000 + k % args.operators)
        for at, raw in _call_events(recording, k, ext, caller, 1.7e9 + k / args.rate):
            timeline.append((at, k, raw))
    timeline.sort(key=lambda item: item[0])
    warm_until = args.calls // 5

    pipeline.start()
    profile = cProfile.Profile(time.process_time)  # CPU, not the waits
    measured_from: tuple[int, float, float, int] | None = None
    i = 0
    while i < len(timeline):
        edge = timeline[i][0] + SLICE
        if measured_from is None and timeline[i][1] >= warm_until:
            await pipeline.drain()
            measured_from = (statements[0], time.process_time(), time.perf_counter(), i)
            if args.profile:
                profile.enable()
        while i < len(timeline) and timeline[i][0] < edge:
            await pipeline.on_event(_parse(timeline[i][2]), timeline[i][0])
            i += 1
        await pipeline.drain()
    if args.profile:
        profile.disable()
    assert measured_from is not None
    s0, c0, w0, first = measured_from
    cpu, wall, stmts = time.process_time() - c0, time.perf_counter() - w0, statements[0] - s0
    calls = args.calls - warm_until  # the events of the calls overlapping the edge even out
    await pipeline.close()
    await engine.dispose()

    print(
        f"{args.calls} calls at {args.rate:g}/s of timeline ({args.known:.0%} known callers), "
        f"{calls} measured ({len(timeline) - first} events)"
    )
    print(
        f"  CPU per call {cpu / calls * 1000:6.2f} ms   wall per call {wall / calls * 1000:6.2f} ms"
        f"   SQL statements per call {stmts / calls:5.1f}"
    )
    print(f"  pipeline: {pipeline.stats}")
    if args.profile:
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(r"(crm_core|telephony|notifier)/", 45)


if __name__ == "__main__":
    asyncio.run(main())
