"""Screen-pop delivery: 500 operator sockets, 20 call events per second, publish -> socket latency.

    .venv/bin/python bench/ws_bench.py [--operators 500] [--supervisors 5] [--rate 20]
                                       [--seconds 10]

Two processes, as in production: the service (uvicorn + the event hub, in a subprocess) and the
browsers (every websocket client, in this process); both stamp times with CLOCK_MONOTONIC, which is
shared by all processes of the machine. The service publishes `rate` call.ringing events per second,
each to one random operator's extension (and, summarised, to the supervisors), twice:

  db     hub.publish(): INSERT into event_log + NOTIFY + COMMIT, back through LISTEN, fan-out, send
  local  hub.publish_local(): the same fan-out and send with the database step skipped

Measured from just before the publish call to the frame's arrival in the client process. Not
included: the AMI read and the call tracker's own database work (issue 4), which come before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from web.container import Container

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECRET = "bench-secret-key-that-is-long-enough-for-hs256"


def _card(k: int) -> dict[str, Any]:
    """A screen-pop about the size the call tracker sends: card, deal, history, tasks."""
    return {
        "call": {"linkedid": f"bench-{k}", "from": "+79991234567", "direction": "inbound"},
        "card": {
            "client": {"id": k, "name": f"Client {k}", "company": "Acme LLC", "phones": ["+7999"]},
            "deal": {"id": k, "title": "Office chairs", "stage": "negotiation", "amount": 120000},
            "communications": [
                {"id": i, "kind": "call", "direction": "inbound", "at": "2026-01-01T10:00:00Z"}
                for i in range(5)
            ],
            "tasks": [
                {"id": i, "kind": "callback", "due": "2026-01-02T10:00:00Z"} for i in range(2)
            ],
        },
    }


# ---- the service process ------------------------------------------------------------------


async def serve(url: str, operators: int, supervisors: int, rate: int, seconds: float) -> None:
    from bench._common import served
    from crm_core.settings import CoreSettings
    from notifier.settings import NotifierSettings
    from web.compose import open_container
    from web.settings import Settings, WebSettings

    settings = Settings(
        core=CoreSettings(DATABASE_URL=url),
        web=WebSettings(SECRET_KEY=SECRET),
        notifier=NotifierSettings(),
    )
    container = await open_container(settings, migrate=False)
    async with served(
        container, log_level="warning", ws_per_message_deflate=False, backlog=4096
    ) as (running, port):
        print("PORT", port, flush=True)
        await _publish(running, operators, supervisors, rate, seconds)


async def _publish(
    running: Container, operators: int, supervisors: int, rate: int, seconds: float
) -> None:
    from crm_core.events.types import CallEvent

    hub = running.hub
    assert hub is not None
    async with asyncio.timeout(300):
        await hub.wait_ready()
        while hub.subscriber_count() < operators + supervisors:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    extensions = [str(2000 + i) for i in range(operators)]
    for k in range(20):  # warm up: prepared statements, first NOTIFY round
        await hub.publish([CallEvent("call.ringing", f"warm-{k}", (extensions[k],), {})])
    await asyncio.sleep(1.0)
    loop = asyncio.get_running_loop()
    stats: dict[str, list[float]] = {}
    for mode in ("db", "local"):
        took: list[float] = []
        start = loop.time() + 0.1
        for k in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + k / rate - loop.time()))
            payload = {**_card(k), "mode": mode}
            payload["t0"] = t0 = time.monotonic()
            event = CallEvent("call.ringing", f"{mode}-{k}", (random.choice(extensions),), payload)
            if mode == "db":
                await hub.publish([event])
            else:
                hub.publish_local([event])
            took.append((time.monotonic() - t0) * 1000)
        stats[mode] = took
        await asyncio.sleep(1.5)
    hub.publish_local([CallEvent("bench.done", "done", (), {"mode": "done", "t0": 0.0})])
    print("STATS", json.dumps(stats), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # until the clients are done


# ---- the browsers (this process) ----------------------------------------------------------


async def make_users(url: str, operators: int, supervisors: int) -> list[tuple[str, str]]:
    """(role, token) per user: one bulk insert sharing one password hash (argon2 is slow)."""
    from bench._common import signed_in_users

    users = await signed_in_users(url, operators, supervisors, first_extension=2000, hours=2)
    return [(u["role"], u["token"]) for u in users]


async def browsers(port: int, users: list[tuple[str, str]]) -> dict[str, list[float]]:
    from websockets.asyncio.client import ClientConnection, connect

    latencies: dict[str, list[float]] = {}
    done = asyncio.Event()
    gate = asyncio.Semaphore(50)
    sockets: list[ClientConnection] = []

    async def read(ws: ClientConnection, role: str) -> None:
        async for raw in ws:
            now = time.monotonic()
            msg = json.loads(raw)
            if msg.get("type") == "ping":
                await ws.send('{"type":"pong"}')
                continue
            if "seq" not in msg:
                continue
            payload = msg["payload"]
            if "mode" not in payload:  # warm-up
                continue
            if payload.get("mode") == "done":
                done.set()
                continue
            latencies.setdefault(f"{role}/{payload['mode']}", []).append(
                (now - payload["t0"]) * 1000
            )

    async def open_one(role: str, token: str) -> asyncio.Task[None]:
        async with gate:
            ws = await connect(
                f"ws://127.0.0.1:{port}/ws?token={token}", compression=None, open_timeout=60
            )
        sockets.append(ws)
        return asyncio.create_task(read(ws, role))

    readers = await asyncio.gather(*(open_one(role, token) for role, token in users))
    print(f"{len(sockets)} sockets connected", flush=True)
    async with asyncio.timeout(600):
        await done.wait()
    for ws in sockets:
        await ws.close()
    for r in readers:
        r.cancel()
    return latencies


async def main() -> None:
    from bench._common import embedded_database, row

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--operators", type=int, default=500)
    parser.add_argument("--supervisors", type=int, default=5)
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    url, _pg = embedded_database()
    users = await make_users(url, args.operators, args.supervisors)
    service = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        url,
        *(str(v) for v in (args.operators, args.supervisors, args.rate, args.seconds)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert service.stdout is not None and service.stdin is not None
    try:
        port = int((await service.stdout.readline()).split()[1])
        latencies = await browsers(port, users)
        stats = json.loads((await service.stdout.readline()).split(b" ", 1)[1])
        service.stdin.close()
        async with asyncio.timeout(30):
            await service.wait()
    finally:
        if service.returncode is None:
            service.kill()

    cores = os.cpu_count()
    print(
        f"\n{args.operators} operator + {args.supervisors} supervisor sockets, "
        f"{args.rate} call events/s for {args.seconds:g} s per mode, {cores} cores "
        "(PostgreSQL, service and clients share them)"
    )
    print(row("service: hub.publish() (event_log+NOTIFY+COMMIT)", stats["db"]))
    print(row("service: hub.publish_local() (enqueue only)", stats["local"]))
    print(row("pop: publish -> operator socket, db path", latencies.get("operator/db", [0.0])))
    print(row("pop: publish -> operator socket, local", latencies.get("operator/local", [0.0])))
    print(row("board: -> supervisor socket, db path", latencies.get("supervisor/db", [0.0])))
    print(row("board: -> supervisor socket, local", latencies.get("supervisor/local", [0.0])))
    expected = int(args.rate * args.seconds)
    for mode in ("db", "local"):
        got = len(latencies.get(f"operator/{mode}", []))
        if got != expected:
            print(f"WARNING: {mode}: {got} of {expected} pops arrived")
    print(
        "supervisor messages are coalesced (flushed every 0.25 s) by design; the pop figures "
        "exclude the AMI read and call tracking, which come before publish."
    )


if __name__ == "__main__":
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        url, ops, sups, rate, secs = sys.argv[2:7]
        runner(serve(url, int(ops), int(sups), int(rate), float(secs)))
    else:
        runner(main())
