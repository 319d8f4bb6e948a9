"""AMI throughput and memory: listener + tracker + database, beside panoramisk's bare parse rate.

    .venv/bin/python bench/ami_bench.py [--calls 3000] [--memory-calls 100000] [--rounds 1]

1. The same bytes (the eight recordings, renumbered into `--calls` distinct calls) are streamed
   over loopback TCP as fast as possible to (a) a bare panoramisk Manager counting events,
   (b) our listener + tracker (no database), (c) our listener + tracker + pipeline into
   PostgreSQL. Events/s for each, side by side. Target (issue 4): (c) >= 5,000 events/s.
   On a shared machine the load moves between runs: `--rounds N` repeats (a), (b), (c) N times
   (each (c) on a fresh database, so every round does the same work) and reports each round's
   (c)/(a) and the medians.
2. Memory: `--memory-calls` calls through listener + tracker + database, RSS sampled as they
   finish: it must not grow with the number of finished calls (`--memory-calls 0`: skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import resource
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ami_reply, embedded_database
from crm_core.db import make_engine, make_session_factory
from telephony.ami_listener import AmiListener
from telephony.call_pipeline import CallPipeline
from telephony.settings import TelephonySettings
from telephony.tracker import CallTracker, TrackerConfig

AMI_DIR = Path(__file__).resolve().parents[1] / "asterisk" / "recordings"
_UID = re.compile(rb"\b(17955\d{5})\.(\d+)\b")
_CALLER = re.compile(rb"^(CallerIDNum|ConnectedLineNum): \+79(\d{9})\r$", re.M)


def _events_of(path: Path) -> bytes:
    """The recording's events only: the banner, the login and any action's answer (recordings
    made mid-call begin with CoreShowChannels) are not events, and no client dispatches them."""
    blocks = path.read_bytes().split(b"\r\n\r\n")
    return b"".join(b + b"\r\n\r\n" for b in blocks if b.startswith(b"Event: "))


def build_stream(calls: int) -> tuple[bytes, int]:
    """`calls` distinct calls: each pass renumbers Uniqueids/Linkedids, callers vary."""
    # not the recordings that end in Asterisk's Shutdown: panoramisk drops the connection on it
    # (as Asterisk does right after), which would end the bare run's stream there
    bodies = [
        b
        for b in (_events_of(p) for p in sorted(AMI_DIR.glob("*.ami")))
        if b"Event: Shutdown\r\n" not in b
    ]
    per_pass = len(bodies)
    chunks: list[bytes] = []
    for k in range(-(-calls // per_pass)):
        shift = k * 1000

        def uid(m: re.Match[bytes], shift: int = shift) -> bytes:
            return b"%d.%s" % (int(m.group(1)) + shift, m.group(2))

        for body in bodies:
            chunks.append(_UID.sub(uid, body))
    stream = b"".join(chunks)
    return stream, stream.count(b"\r\n\r\n")


class StreamServer:
    """Speaks just enough AMI (banner, Login, CoreShowChannels) and streams the bytes."""

    def __init__(self, stream: bytes) -> None:
        self.stream = stream
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        streaming = False
        try:
            while True:
                text = (await reader.readuntil(b"\r\n\r\n")).decode()
                writer.write(ami_reply(text))
                if not streaming and ("Action: Login" in text):
                    streaming = True
                    asyncio.get_running_loop().call_later(0.2, self._push, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    def _push(self, writer: asyncio.StreamWriter) -> None:
        view = memoryview(self.stream)
        for i in range(0, len(view), 65536):
            writer.write(view[i : i + 65536])

    async def close(self) -> None:
        if self.server:
            self.server.close()


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def bare_panoramisk(stream: bytes, total: int) -> float:
    from panoramisk import Manager

    server = StreamServer(stream)
    await server.start()
    seen = 0
    done = asyncio.Event()
    first: list[float] = []

    def count(manager: object, message: object) -> None:
        nonlocal seen
        if not first:
            first.append(time.perf_counter())
        seen += 1
        if seen >= total:
            done.set()

    manager = Manager(
        host="127.0.0.1", port=server.port, username="crm", secret="crmsecret", ping_delay=3600
    )
    manager.register_event("*", count)
    await manager.connect()
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - first[0]
    manager.close()
    await server.close()
    return total / elapsed


async def ours(
    stream: bytes, total: int, sessions: object | None
) -> tuple[float, CallPipeline | None]:
    server = StreamServer(stream)
    await server.start()
    settings = TelephonySettings(AMI_PORT=server.port, AMI_PING_INTERVAL=3600)
    tracker = CallTracker(TrackerConfig.from_settings(settings))
    seen = 0
    done = asyncio.Event()
    first: list[float] = []
    pipeline: CallPipeline | None = None
    if sessions is not None:
        pipeline = CallPipeline(
            tracker,
            sessions,
            None,
            region="RU",
            callback_due=timedelta(minutes=30),  # type: ignore[arg-type]
        )
        pipeline.start()

    async def on_event(event: dict[str, str], arrival: float) -> None:
        nonlocal seen
        if not first:
            first.append(time.perf_counter())
        seen += 1
        if pipeline is not None:
            await pipeline.on_event(event, arrival)
        else:
            tracker.feed(event, arrival)
        if seen >= total:
            done.set()

    listener = AmiListener(settings, on_event)
    await listener.start()
    await asyncio.wait_for(done.wait(), 3600)
    if pipeline is not None:
        await pipeline.drain()
    elapsed = time.perf_counter() - first[0]
    await listener.close()
    await server.close()
    return total / elapsed, pipeline


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--memory-calls", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)  # the replayed click-to-call names a deal 42 we lack
    stream, total = build_stream(args.calls)
    print(f"stream: {args.calls:,} calls, {total:,} AMI messages, {len(stream) / 1e6:.1f} MB")
    servers = []  # each round's database runs until the end
    bares: list[float] = []
    fulls: list[float] = []
    for r in range(args.rounds):
        if args.rounds > 1:
            print(f"round {r + 1} of {args.rounds}:")
        url, server = embedded_database()  # fresh: every round logs the same calls anew
        servers.append(server)
        engine = make_engine(url, pool_size=2)
        sessions = make_session_factory(engine)
        bare = await bare_panoramisk(stream, total)
        ours_parse, _ = await ours(stream, total, None)
        full, pipeline = await ours(stream, total, sessions)
        assert pipeline is not None
        bares.append(bare)
        fulls.append(full)
        print(f"{'panoramisk 1.4, bare parse over TCP':<48} {bare:>10,.0f} events/s")
        print(f"{'our listener + tracker (no database)':<48} {ours_parse:>10,.0f} events/s")
        print(
            f"{'our listener + tracker + database':<48} {full:>10,.0f} events/s  "
            f"({pipeline.stats['calls_logged']:,} calls logged, "
            f"{pipeline.stats['batches']:,} commits, {pipeline.stats['errors']} facts failed)"
        )
        print(f"{'database path / bare panoramisk, this round':<48} {full / bare:>10.0%}")
        await pipeline.close()  # drained already: its lanes stop
        if r < args.rounds - 1:
            await engine.dispose()
    if args.rounds > 1:
        ratios = ", ".join(f"{f / b:.0%}" for f, b in zip(fulls, bares, strict=True))
        print(
            f"median of {args.rounds} rounds: bare {statistics.median(bares):,.0f}, database "
            f"{statistics.median(fulls):,.0f} events/s; database / bare per round {ratios}, "
            f"median {statistics.median(f / b for f, b in zip(fulls, bares, strict=True)):.0%}"
        )
        full = statistics.median(fulls)
    print(
        f"target >= 5,000 events/s through listener + tracker + database: "
        f"{'MET' if full >= 5000 else 'NOT MET'}"
    )

    if args.memory_calls <= 0:
        await engine.dispose()
        return
    # memory: many more calls through the whole path, RSS as they finish
    chunk_calls = 1000
    rounds = max(1, args.memory_calls // chunk_calls)
    chunk, chunk_total = build_stream(chunk_calls)
    server = StreamServer(b"")
    await server.start()
    settings = TelephonySettings(AMI_PORT=server.port, AMI_PING_INTERVAL=3600)
    tracker = CallTracker(TrackerConfig.from_settings(settings))
    pipe = CallPipeline(tracker, sessions, None, region="RU", callback_due=timedelta(minutes=30))
    pipe.start()
    gc.collect()
    print(
        f"memory over {rounds * chunk_calls:,} calls through tracker + database "
        f"(RSS before: {rss_mb():.1f} MB):"
    )
    t0 = time.perf_counter()
    for r in range(rounds):
        # each round: the same call shapes with fresh ids (shift beyond every earlier round)
        shift = (r + 1) * 10_000_000
        data = _UID.sub(lambda m, s=shift: b"%d.%s" % (int(m.group(1)) + s, m.group(2)), chunk)
        for event_block in data.split(b"\r\n\r\n"):
            if not event_block:
                continue
            event = dict(
                line.split(": ", 1) for line in event_block.decode().split("\r\n") if ": " in line
            )
            await pipe.on_event(event, time.time())
        await pipe.drain()
        gc.collect()
        if r in (0, rounds // 4, rounds // 2, 3 * rounds // 4, rounds - 1) or rounds <= 5:
            print(
                f"  after {(r + 1) * chunk_calls:>7,} calls: RSS {rss_mb():7.1f} MB, "
                f"tracker holds {tracker.stats()}, {time.perf_counter() - t0:6.0f} s"
            )
    await pipe.close()
    await server.close()
    await engine.dispose()
    _ = chunk_total


if __name__ == "__main__":
    try:  # the service runs on uvloop (uvicorn picks it up); measure on the same loop
        import uvloop

        uvloop.install()
        print("event loop: uvloop")
    except ImportError:
        print("event loop: asyncio")
    asyncio.run(main())
