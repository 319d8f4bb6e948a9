"""Board update latency (issue 16): an AMI event -> the supervisors' board updated in a real
browser, with ~200 calls in progress and 300 agents, beside a baseline in the same run.

    .venv/bin/python bench/board_latency_bench.py [--agents 300] [--rate 24] [--seconds 15]

Processes: the PBX stand-in of bench/pop_latency_bench.py (`--pbx`: inbound_answered.ami per call,
the agent rewritten to one of `--agents` extensions, every Timestamp the moment the event is
sent; each call lasts ~8.5 s as recorded, so at 24 new calls/s about 200 are in progress), the
real service (web.app.create_app, its lifespan: leader election, AMI listener, tracker, pipeline,
PostgreSQL, event hub, /ws), headless Chromium showing /dashboard as a supervisor (300 agents on
duty in its table), and, in this process, a plain websocket client on the same supervisors'
channel.

Measured per call, from its first AMI event (the call view's `started_at` is that event's
Timestamp, i.e. when the PBX stand-in sent it; one clock for the machine):

  board     -> its row appears in the board's calls table (a MutationObserver in the page notes
               performance.timeOrigin + performance.now() when a row with its linkedid appears)
  baseline  -> the `call.started` frame reaches the plain websocket client: the same path without
               the browser (the board's own cost is the difference)

Prints p50/p99/max of both and MET / NOT MET for the issue's target (board p99 <= 300 ms).
On a 2-core machine shared with other work the figures move a lot: run it more than once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from datetime import time as clock_time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import embedded_database, pct
from bench.pop_latency_bench import FIRST_EXTENSION, SECRET, _expect, _send, make_users

POP_BENCH = Path(__file__).resolve().parent / "pop_latency_bench.py"
TARGET_P99_MS = 300.0
OBSERVER = """
() => {
  window.__seen = {};
  const calls = document.getElementById("calls");
  new MutationObserver(() => {
    const now = performance.timeOrigin + performance.now();
    for (const row of calls.querySelectorAll("tr[data-linkedid]")) {
      const id = row.dataset.linkedid;
      if (!(id in window.__seen)) window.__seen[id] = now;
    }
  }).observe(calls, { childList: true });
}
"""


async def on_duty(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO schedule_intervals (user_id, weekday, start_time, end_time)"
            " SELECT u.id, d, $1, $1 FROM users u, generate_series(0, 6) AS d"
            " WHERE u.extension IS NOT NULL",
            clock_time(0),
        )
    finally:
        await conn.close()


async def main() -> int:
    import uvicorn
    from playwright.async_api import async_playwright
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from crm_core.settings import CoreSettings
    from notifier.settings import NotifierSettings
    from telephony.settings import TelephonySettings
    from tests.web.live import CHROMIUM, CHROMIUM_ARGS
    from web.app import create_app
    from web.compose import open_container
    from web.settings import Settings, WebSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=300)
    parser.add_argument("--rate", type=float, default=24.0, help="new calls per second")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    url, _pg = embedded_database()
    users = await make_users(url, args.agents, 1)
    await on_duty(url)
    token = users[-1]["token"]  # the supervisor

    pbx = await asyncio.create_subprocess_exec(
        sys.executable, str(POP_BENCH), "--pbx", str(args.agents), "200",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    server: uvicorn.Server | None = None
    serving: asyncio.Task[None] | None = None
    frames: dict[str, float] = {}
    try:
        pbx_port = int((await _expect(pbx, "PORT", 60))[0])
        settings = Settings(
            core=CoreSettings(DATABASE_URL=url),
            telephony=TelephonySettings(
                AMI_ENABLED=True,
                AMI_HOST="127.0.0.1",
                AMI_PORT=pbx_port,
                AMI_USERNAME="bench",
                AMI_SECRET="bench",
                AGI_ENABLED=False,
            ),
            web=WebSettings(SECRET_KEY=SECRET),
            notifier=NotifierSettings(),
        )
        container = await open_container(settings, migrate=False)
        app = create_app(container=container)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                log_level="warning",
                ws_per_message_deflate=False,
                lifespan="on",
            )
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with asyncio.timeout(60):  # the leader election, then the listener's login
            while (tracking := app.state.container.call_tracking) is None or not (  # noqa: ASYNC110
                tracking.listener is not None and tracking.listener.connected
            ):
                await asyncio.sleep(0.1)
        base = f"http://127.0.0.1:{port}"

        async def baseline_client() -> None:
            # reconnects: on an overloaded machine the server may drop a socket that answered
            # its ping late, and a baseline that silently stopped would read as no baseline
            while True:
                try:
                    async with connect(
                        f"ws://127.0.0.1:{port}/ws?token={token}", compression=None
                    ) as ws:
                        async for raw in ws:
                            now = time.time()
                            msg = json.loads(raw)
                            if msg.get("type") == "ping":
                                await ws.send('{"type":"pong"}')
                            elif msg.get("type") == "call.started":
                                frames.setdefault(msg["payload"]["linkedid"], now)
                except (OSError, ConnectionClosed):
                    await asyncio.sleep(0.2)

        reader = asyncio.create_task(baseline_client())
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport={"width": 1366, "height": 860})
            await context.add_init_script(f"localStorage.setItem('crm_token', {json.dumps(token)})")
            page = await context.new_page()
            await page.goto(base + "/dashboard")
            await page.wait_for_selector("body[data-board-ready='1']", timeout=60_000)
            rows = await page.locator("#agents tr").count()
            await page.evaluate(OBSERVER)
            await asyncio.sleep(1.0)  # the board's socket is subscribed

            first = 0
            started: dict[str, float] = {}
            for mode, seconds in (("warmup", args.warmup), ("measured", args.seconds)):
                calls = round(args.rate * seconds)
                print(f"{mode}: {calls} calls at {args.rate:g}/s ...", flush=True)
                _send(pbx, f"PLAY {first} {calls} {args.rate} 1")
                first += calls
                await _expect(pbx, "PLAYED", 600 + seconds * 2)
                await asyncio.sleep(2.0)
                if mode == "warmup":
                    await page.evaluate("() => { window.__seen = {}; }")
                    frames.clear()
            seen: dict[str, float] = await page.evaluate("() => window.__seen")
            await browser.close()
        reader.cancel()
        async with container.sessions() as s:
            from sqlalchemy import select

            from crm_core.communications.models import Communication

            for c in await s.scalars(select(Communication).where(Communication.kind == "call")):
                if c.external_id:
                    started[c.external_id] = c.occurred_at.timestamp()
    finally:
        if pbx.returncode is None and pbx.stdin is not None:
            pbx.stdin.close()
            await pbx.wait()
        if server is not None and serving is not None:
            server.should_exit = True
            await serving

    board = [(seen[k] / 1000 - started[k]) * 1000 for k in seen if k in started]
    plain = [(frames[k] - started[k]) * 1000 for k in frames if k in started]
    print(f"board: {rows} agents in the table (first extension {FIRST_EXTENSION})")
    for label, samples in (
        ("baseline: plain websocket client", plain),
        ("board in Chromium", board),
    ):
        if samples:
            print(
                f"{label:<34} n={len(samples):>5}  p50={pct(samples, 0.5):7.1f} ms  "
                f"p99={pct(samples, 0.99):7.1f} ms  max={max(samples):7.1f} ms"
            )
    ok = bool(board) and pct(board, 0.99) <= TARGET_P99_MS
    print(f"target: board p99 <= {TARGET_P99_MS:.0f} ms: {'MET' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
