"""/api/health and FastAGI latency during 20 concurrent wrong sign-ins, beside the same at rest.

    .venv/bin/python bench/login_storm_bench.py [--seconds 6] [--attackers 20]

The service runs in this process as deployed (uvicorn, the FastAGI router, an embedded PostgreSQL
seeded as bench/agi_bench.py seeds it); the client runs in a separate process. For each setup
the client first measures at rest (health requests and FastAGI calls paced every 25 ms), then
again while `--attackers` connections post wrong passwords back to back. Three setups:
- argon2 on the event loop: the passwords checked inline, as before the fix;
- argon2 in the pool, throttle out of reach: PASSWORD_HASH_WORKERS threads (cores - 1), each
  attacker a different unknown login from a different address (so every attempt pays a decoy
  verification): the pool alone keeps the loop free;
- the service's defaults: one address; the throttle answers 429 past
  LOGIN_MAX_ATTEMPTS_PER_ADDRESS.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import socket
import sys
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import embedded_database, pct, served

PACE = 0.025
SETUPS = [
    ("argon2 on the event loop (before)", {"inline": True, "throttle": False}),
    ("argon2 in the pool, throttle out of reach", {"inline": False, "throttle": False}),
    ("pool + throttle (defaults, one address)", {"inline": False, "throttle": True}),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the client (a separate process) ---------------------------------------------------------


async def _paced(probe: Any, stop: asyncio.Event) -> list[float]:
    """Open loop: a probe every PACE s until `stop`, whatever the answers; latencies in ms."""
    tasks = []
    while not stop.is_set():
        tasks.append(asyncio.create_task(probe()))
        await asyncio.sleep(PACE)
    return [ms for ms in await asyncio.gather(*tasks)]


async def _measure(
    http_port: int, agi_port: int, seconds: float, attackers: int, many: bool
) -> Any:
    import httpx

    from bench.agi_bench import _request
    from telephony.agi_client import converse, parse_set_variable

    base = f"http://127.0.0.1:{http_port}"
    agi_payload = _request("+79160000001")  # a known client: the router's full path

    async def health(client: httpx.AsyncClient) -> float:
        t0 = time.perf_counter()
        r = await client.get("/api/health")
        assert r.status_code == 200
        return (time.perf_counter() - t0) * 1000

    fell_back = {"n": 0}

    async def agi() -> float:
        t0 = time.perf_counter()
        commands = await converse("127.0.0.1", agi_port, agi_payload, within=60)
        ms = (time.perf_counter() - t0) * 1000
        found = dict(v for c in commands if (v := parse_set_variable(c)) is not None)
        if not found.get("CRM_TARGET"):
            fell_back["n"] += 1  # no target in time: the dialplan sends the call to the queue
        return ms

    async def attacker(n: int, stop: asyncio.Event, codes: dict[int, int]) -> None:
        # many: a different login from a different (forwarded) address each, as a botnet would
        headers = {"X-Forwarded-For": f"10.9.{n // 250}.{n % 250 + 1}"} if many else {}
        login = f"nobody{n}" if many else "olga"
        async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as client:
            while not stop.is_set():
                form = {"username": login, "password": f"guess-{time.perf_counter()}"}
                r = await client.post("/api/auth/token", data=form)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1

    out: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        for _ in range(20):  # warm-up: connections, plans, the router's first batch
            await health(client)
            await agi()
        for phase in ("rest", "storm"):
            stop = asyncio.Event()
            codes: dict[int, int] = {}
            fell_back["n"] = 0
            crowd = [
                asyncio.create_task(attacker(n, stop, codes))
                for n in range(attackers if phase == "storm" else 0)
            ]
            if crowd:
                await asyncio.sleep(1.0)  # let the storm build up first
            probes = asyncio.gather(_paced(lambda: health(client), stop), _paced(agi, stop))
            t0 = time.perf_counter()
            await asyncio.sleep(seconds)
            stop.set()
            health_ms, agi_ms = await probes
            await asyncio.gather(*crowd)
            took = time.perf_counter() - t0
            out[phase] = {
                "health": health_ms,
                "agi": agi_ms,
                "queue": fell_back["n"],
                "codes": codes,
                "seconds": took,
            }
    return out


def _client(
    http_port: int, agi_port: int, seconds: float, attackers: int, many: bool, pipe: Connection
) -> None:
    pipe.send(asyncio.run(_measure(http_port, agi_port, seconds, attackers, many)))
    pipe.close()


# --- the service (this process) --------------------------------------------------------------


async def _serve(url: str, setup: dict[str, bool], args: argparse.Namespace) -> Any:
    from crm_core.settings import CoreSettings
    from crm_core.users.security import PasswordWorkers
    from telephony.settings import TelephonySettings
    from web.app import settle_heap
    from web.compose import close_container, open_container
    from web.settings import Settings, WebSettings

    agi_port = _free_port()
    web: dict[str, Any] = {"SECRET_KEY": "bench-secret-key-that-is-long-enough-for-hs256"}
    if not setup["throttle"]:
        web |= {"LOGIN_MAX_ATTEMPTS": 10**9, "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": 10**9}
    settings = Settings(
        core=CoreSettings(DATABASE_URL=url),
        telephony=TelephonySettings(AMI_ENABLED=False, AGI_PORT=agi_port),
        web=WebSettings(**web),
    )
    c = await open_container(settings, migrate=False)
    if setup["inline"]:
        c.passwords.close()
        c = replace(c, passwords=PasswordWorkers(0))
    async with served(
        c, log_level="error", proxy_headers=True, forwarded_allow_ips="127.0.0.1"
    ) as (_, http_port):
        settle_heap()
        recv, send = mp.Pipe(duplex=False)
        proc = mp.get_context("spawn").Process(
            target=_client,
            args=(http_port, agi_port, args.seconds, args.attackers, not setup["throttle"], send),
        )
        proc.start()
        send.close()
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(None, recv.recv)
        await loop.run_in_executor(None, proc.join)
    await close_container(c)
    return results


async def _seed_login(url: str) -> None:
    import asyncpg

    from crm_core.users.security import hash_password

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO users (login, password_hash, role, full_name, timezone, is_active)"
            " VALUES ('olga', $1, 'operator', 'Olga', 'Europe/Moscow', true)",
            hash_password("the right one"),
        )
    finally:
        await conn.close()


def _cells(ms: list[float]) -> str:
    return f"{pct(ms, 0.5):8.2f} {pct(ms, 0.99):8.2f} {max(ms):9.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="each phase")
    parser.add_argument("--attackers", type=int, default=20)
    args = parser.parse_args()
    # the service logs every refused sign-in (as it should); not wanted among the figures
    # (and each FastAGI request answered "no target" past the router's deadline: counted below)
    for name in ("web", "crm_core", "telephony"):
        logging.getLogger(name).setLevel(logging.CRITICAL)

    from bench.agi_bench import _seed
    from crm_core.users.security import default_workers

    print("starting embedded PostgreSQL …", flush=True)
    url, server = embedded_database()
    asyncio.run(_seed(url, 8))
    asyncio.run(_seed_login(url))
    print(
        f"{args.attackers} connections posting wrong passwords back to back; probes every"
        f" {PACE * 1000:.0f} ms; {args.seconds:.0f} s per phase; password pool:"
        f" {default_workers()} thread(s)\n"
    )
    head = f"{'':<44}{'p50 ms':>8} {'p99 ms':>8} {'max ms':>9}"
    for title, setup in SETUPS:
        results = asyncio.run(_serve(url, setup, args))
        print(f"--- {title}")
        print(head)
        for phase in ("rest", "storm"):
            r = results[phase]
            when = "at rest" if phase == "rest" else "during the storm"
            print(f"  /api/health {when:<30}{_cells(r['health'])}")
            print(f"  FastAGI request {when:<26}{_cells(r['agi'])}")
        for phase in ("rest", "storm"):
            if results[phase]["queue"]:
                n, of = results[phase]["queue"], len(results[phase]["agi"])
                print(f"  calls sent to the queue (no target in time), {phase}: {n} of {of}")
        storm = results["storm"]
        codes = ", ".join(f"{n} x {code}" for code, n in sorted(storm["codes"].items()))
        print(f"  sign-in answers during the storm: {codes} ({storm['seconds']:.1f} s)\n")
    del server


if __name__ == "__main__":
    main()
