"""FastAGI routing latency: server + router + PostgreSQL, beside a server answering a constant.

    .venv/bin/python bench/agi_bench.py [--concurrency 200] [--c-rounds 100] [--rounds 20]

An embedded PostgreSQL is seeded with managers on duty (some ringing or talking), clients with
phones and open deals. Two FastAGI servers run in this process: (a) `AgiServer` + `Router` (the
service as deployed) and (b) `AgiServer` whose route answers a constant, i.e. the protocol cost
alone. Asterisk is played by a separate process, twice:
- bench/agi_client.c (built with the system's cc): bursts of `--concurrency` requests started
  back to back, each sending the recorded AGI environment (half the callers are known clients)
  and answering each command with `200 result=1`; the two servers take turns burst by burst.
  Latency is connect -> close as Asterisk sees it; the servers also time their own decision
  (environment read -> commands written, database included). The bursts run once per idle gap
  of `--gaps` (ms between bursts): on this kind of VM a burst that meets an idle machine is
  served far slower than one that meets a busy machine, by the constant server as well.
- a Python asyncio client: bursts (its own CPU is in every latency) and paced arrivals.
Target (issue 6): p99 <= 10 ms at 200 concurrent requests, database work included.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import embedded_database, pct

RECORDED = (
    Path(__file__).resolve().parents[1] / "asterisk" / "recordings" / "agi_request.txt"
).read_bytes()
KNOWN = 2000


def _use_uvloop(enabled: bool) -> str:
    if enabled:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            return "uvloop"
        except ImportError:
            pass
    return "asyncio"


# --- the Asterisk side (a separate process) --------------------------------------------------


def _request(caller: str) -> bytes:
    return RECORDED.replace(b"agi_callerid: +79161234567", f"agi_callerid: {caller}".encode())


async def _one(port: int, payload: bytes) -> tuple[float, str]:
    from telephony.agi_client import converse, parse_set_variable

    start = time.perf_counter()
    commands = await converse("127.0.0.1", port, payload, within=30)
    ms = (time.perf_counter() - start) * 1000
    found = dict(v for c in commands if (v := parse_set_variable(c)) is not None)
    return ms, found.get("CRM_TARGET", "?")


def _payload(rnd: random.Random) -> bytes:
    """Half the callers are known clients (responsible first), half unknown (round-robin)."""
    if rnd.random() < 0.5:
        return _request(f"+7916{rnd.randrange(KNOWN):07d}")
    return _request(f"+7925{rnd.randrange(10**7):07d}")


async def _bursts(port: int, concurrency: int, rounds: int, rnd: random.Random) -> dict[str, Any]:
    latencies: list[float] = []
    targets: dict[str, int] = {}
    busy = 0.0
    for _ in range(rounds):
        payloads = [_payload(rnd) for _ in range(concurrency)]
        t0 = time.perf_counter()
        done = await asyncio.gather(*(_one(port, p) for p in payloads))
        busy += time.perf_counter() - t0
        for ms, target in done:
            latencies.append(ms)
            targets[target] = targets.get(target, 0) + 1
    return {"latencies": latencies, "seconds": busy, "targets": targets}


async def _paced(port: int, rate: float, seconds: float, rnd: random.Random) -> list[float]:
    """Open loop: a new request every 1/rate s whatever the answers, as calls arrive."""
    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_one(port, _payload(rnd))))
    return [ms for ms, _ in await asyncio.gather(*tasks)]


async def _load(
    ports: dict[str, int], concurrency: int, rounds: int, rates: list[float]
) -> dict[str, Any]:
    rnd = random.Random(6)
    results: dict[str, Any] = {}
    for name, port in ports.items():
        await asyncio.gather(*(_one(port, _request("+79250000000")) for _ in range(concurrency)))
        results[name] = await _bursts(port, concurrency, rounds, rnd)
        results[name]["paced"] = {rate: await _paced(port, rate, 3.0, rnd) for rate in rates}
    return results


def _client(
    ports: dict[str, int],
    concurrency: int,
    rounds: int,
    rates: list[float],
    uv: bool,
    out: Connection,
) -> None:
    _use_uvloop(uv)
    out.send(asyncio.run(_load(ports, concurrency, rounds, rates)))
    out.close()


# --- the Asterisk side in C (bench/agi_client.c): a thread-per-channel client's latencies --------


def _c_client() -> Path | None:
    """Build bench/agi_client.c with the system's C compiler; None if there is none."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    source = Path(__file__).with_name("agi_client.c")
    binary = Path(tempfile.gettempdir()) / f"crm-agi-client-{source.stat().st_mtime_ns}"
    if not binary.exists():
        subprocess.run([cc, "-O2", "-o", str(binary), str(source)], check=True)
    return binary


async def _c_bursts(
    binary: Path,
    ports: dict[str, int],
    concurrency: int,
    rounds: int,
    gap_ms: int,
    rnd: random.Random,
) -> dict[str, dict[str, Any]]:
    """`rounds` bursts per server, the servers taking turns burst by burst (same conditions).

    The first burst of each server warms it up (plans cached, connections made) and is dropped.
    """
    names = {port: name for name, port in ports.items()}
    total = (rounds + 1) * len(ports)
    with tempfile.NamedTemporaryFile(suffix=".agi") as payloads:
        payloads.write(b"\0".join(_payload(rnd) for _ in range(concurrency * total)))
        payloads.flush()
        order = ",".join(str(port) for port in ports.values())
        args = [str(binary), order, str(concurrency), str(total), payloads.name, str(gap_ms)]
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{binary.name} exited with {proc.returncode}")
    results: dict[str, dict[str, Any]] = {
        name: {"latencies": [], "targets": {}, "round_p99": [], "seconds": 0.0} for name in ports
    }
    rounds_out = out.decode().split("# ")[1:]
    for k, block in enumerate(rounds_out):
        if k < len(ports):
            continue  # the first round of each server was the warm-up
        head, *lines = block.splitlines()
        port, wall = head.split()
        r = results[names[int(port)]]
        burst = [line.split(" ", 2) for line in lines]
        latencies = [int(micros) / 1000 for _, micros, _ in burst]
        r["latencies"] += latencies
        r["round_p99"].append(pct(latencies, 0.99))
        r["seconds"] += int(wall) / 1e6
        for _, _, target in burst:
            r["targets"][target] = r["targets"].get(target, 0) + 1
    return results


# --- the service side ------------------------------------------------------------------------


async def _seed(url: str, managers: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        ids = []
        for i in range(managers):
            uid = await conn.fetchval(
                "INSERT INTO users (login, password_hash, role, full_name, extension, timezone,"
                " is_active) VALUES ($1, 'x', 'manager', $1, $2, $3, true) RETURNING id",
                f"manager{i}",
                str(101 + i),
                ("Europe/Moscow", "America/New_York", "Asia/Vladivostok")[i % 3],
            )
            ids.append(uid)
            await conn.executemany(
                "INSERT INTO schedule_intervals (user_id, weekday, start_time, end_time)"
                " VALUES ($1, $2, '00:00', '00:00')",
                [(uid, d) for d in range(7)],
            )
        stage = await conn.fetchval("SELECT id FROM deal_stages ORDER BY position LIMIT 1")
        for k in range(KNOWN):
            cid = await conn.fetchval(
                "INSERT INTO clients (kind, name, responsible_id, readiness, notes)"
                " VALUES ('person', $1, $2, 0, '') RETURNING id",
                f"Client {k}",
                ids[k % managers],
            )
            await conn.execute(
                "INSERT INTO client_phones (client_id, e164, raw) VALUES ($1, $2, $2)",
                cid,
                f"+7916{k:07d}",
            )
            await conn.execute(
                "INSERT INTO deals (client_id, title, amount, currency, responsible_id, stage_id)"
                " VALUES ($1, 'Deal', 0, 'RUB', $2, $3)",
                cid,
                ids[k % managers],
                stage,
            )
        # two managers on a call: the router must skip them
        await conn.execute(
            "INSERT INTO agent_states (extension, state, linkedid, since) VALUES"
            " ('101', 'talking', '1.1', now()), ('102', 'ringing', '1.2', now())"
        )
        await conn.execute("ANALYZE")  # as autovacuum would have by the time calls come in
    finally:
        await conn.close()


async def _serve(
    args: argparse.Namespace, url: str
) -> tuple[dict[str, Any], dict[int, dict[str, Any]], dict[str, Any]]:
    from crm_core.routing.router import Router
    from crm_core.routing.rules import Reason, RouteDecision
    from telephony.agi import AgiServer
    from web.app import settle_heap

    constant = RouteDecision("101", 1, None, None, Reason.round_robin)

    async def fixed(caller: str, did: str, env: Mapping[str, str]) -> RouteDecision:
        return constant

    router = Router(url)  # the service's defaults (web/parts/agi_routing.py)
    assert await router.warm_up()
    real = AgiServer(router.route, port=0)
    const = AgiServer(fixed, port=0)
    await real.start()
    await const.start()
    settle_heap()  # as the service does once started (web/app.py)
    ports = {"constant answer (protocol only)": const.port, "router + PostgreSQL": real.port}
    c_results: dict[int, dict[str, Any]] = {}  # by idle gap (ms), then by server
    binary = _c_client()
    rnd = random.Random(7)
    for gap in args.gaps if binary is not None else []:
        assert binary is not None
        decided: dict[int, list[float]] = {const.port: [], real.port: []}
        const.on_decision = decided[const.port].append
        real.on_decision = decided[real.port].append
        runs = await _c_bursts(binary, ports, args.concurrency, args.c_rounds, gap, rnd)
        const.on_decision = real.on_decision = None
        for name, port in ports.items():  # warm-up bursts included: a few hundred of 20,000
            runs[name]["decision_ms"] = [s * 1000 for s in decided[port]]
        c_results[gap] = runs
    recv, send = mp.Pipe(duplex=False)
    proc = mp.get_context("spawn").Process(
        target=_client,
        args=(ports, args.concurrency, args.rounds, args.rates, not args.no_uvloop, send),
    )
    proc.start()
    send.close()  # ours: so that recv() fails instead of hanging if the client dies
    loop = asyncio.get_running_loop()
    results: dict[str, Any] = await loop.run_in_executor(None, recv.recv)
    await loop.run_in_executor(None, proc.join)
    stats = {
        "batches": router.stats.batches,
        "routed": router.stats.routed,
        "largest": router.stats.largest_batch,
        "failures": router.stats.failures,
    }
    await real.stop()
    await const.stop()
    await router.close()
    return results, c_results, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20, help="bursts per server, Python client")
    parser.add_argument("--c-rounds", type=int, default=100, help="bursts per server, C client")
    parser.add_argument(
        "--gaps", type=int, nargs="*", default=[0, 20, 100], help="ms idle between C bursts"
    )
    parser.add_argument("--managers", type=int, default=8)
    parser.add_argument(
        "--rates", type=float, nargs="*", default=[100.0, 500.0, 1000.0], help="paced req/s"
    )
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    loop_name = _use_uvloop(not args.no_uvloop)

    print("starting embedded PostgreSQL …", flush=True)
    url, server = embedded_database()
    asyncio.run(_seed(url, args.managers))
    results, c_results, stats = asyncio.run(_serve(args, url))
    del server

    header = f"{'server':<34} {'decisions/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    if c_results:
        print(
            f"\n{args.c_rounds} bursts of {args.concurrency} simultaneous FastAGI requests per"
            " server and idle gap from a C client (bench/agi_client.c: per request connect + send"
            " at once, as Asterisk's channel threads do; the servers take turns burst by burst;"
            " latency = connect -> close; decisions/s = requests / time bursts lasted)"
        )
        for gap, runs in c_results.items():
            print(f"\n{gap} ms idle between bursts:")
            print(header + f" {'p99 of a burst: median':>24} {'p90':>6} {'decision p50/p99':>18}")
            for name, r in runs.items():
                lat, rounds = r["latencies"], sorted(r["round_p99"])
                print(
                    f"{name:<34} {len(lat) / r['seconds']:>12,.0f} {pct(lat, 0.50):>8.2f} "
                    f"{pct(lat, 0.99):>8.2f} {max(lat):>8.2f} {pct(rounds, 0.5):>24.2f} "
                    f"{pct(rounds, 0.9):>6.2f} "
                    f"{pct(r['decision_ms'], 0.5):>8.2f} / {pct(r['decision_ms'], 0.99):<7.2f}"
                )
        print(
            "\n(decision = the server's own time: environment read -> commands written, database"
            " included; the rest of connect -> close is TCP, accept and Asterisk's replies)"
        )
    else:
        print("\n(no C compiler: the C client's bursts are skipped)")

    print(
        f"\n{args.rounds} bursts of {args.concurrency} concurrent FastAGI requests from a Python"
        f" asyncio client ({loop_name}, one thread serving every conversation in turns, so its"
        " own CPU is in each latency)\n"
    )
    print(header)
    for name, r in results.items():
        lat = r["latencies"]
        print(
            f"{name:<34} {len(lat) / r['seconds']:>12,.0f} {pct(lat, 0.50):>8.2f} "
            f"{pct(lat, 0.99):>8.2f} {max(lat):>8.2f}"
        )
    print("\npaced arrivals for 3 s each (open loop, Python client), p50 / p99 ms:\n")
    print(f"{'server':<34}" + "".join(f"{f'{rate:,.0f}/s':>20}" for rate in args.rates))
    for name, r in results.items():
        cells = (f"{pct(lat, 0.5):.2f} / {pct(lat, 0.99):.2f}" for lat in r["paced"].values())
        print(f"{name:<34}" + "".join(f"{c:>20}" for c in cells))
    print(
        f"\nrouter: {stats['routed']} decisions in {stats['batches']} batches "
        f"(largest {stats['largest']}), {stats['failures']} database failures"
    )
    key, base = "router + PostgreSQL", "constant answer (protocol only)"
    bursts = [runs[key] for runs in c_results.values()] or [results[key]]
    targets: dict[str, int] = {}
    for burst in bursts:
        for target, n in burst["targets"].items():
            targets[target] = targets.get(target, 0) + n
    print("burst targets:", dict(sorted(targets.items())))
    print(f"target p99 <= 10 ms at {args.concurrency} simultaneous requests, connect -> close:")
    for gap, runs in c_results.items():
        p99 = pct(runs[key]["latencies"], 0.99)
        print(
            f"  {gap} ms idle between bursts: {'met' if p99 <= 10 else 'NOT met'} ({p99:.2f} ms;"
            f" constant answer {pct(runs[base]['latencies'], 0.99):.2f} ms;"
            f" router's decision {pct(runs[key]['decision_ms'], 0.99):.2f} ms)"
        )
    if not c_results:
        p99 = pct(results[key]["latencies"], 0.99)
        print(f"  Python client: {'met' if p99 <= 10 else 'NOT met'} ({p99:.2f} ms)")


if __name__ == "__main__":
    main()
