#!/usr/bin/env python3
"""Record one scenario's AMI byte stream from a running kit Asterisk (asterisk/kit/run.sh start).

    python3 asterisk/record_ami.py --ami-port 15301 --agi-port 14801 SCENARIO OUT.ami

One connection only listens and keeps every byte it receives (banner, Login response, events),
as the recordings in asterisk/recordings were made; a second one drives the call, so the recorded
stream holds no responses of ours. A FastAGI router on --agi-port answers CRM_TARGET "101".

Scenarios (the kit records the customer-facing channel with MixMonitor, see kit/README.md):
  inbound_recorded            +79161234567 calls, 101 answers, caller hangs up after 6 s
  inbound_recorded_abandoned  +79031234567 calls, 101 never answers, caller gives up after 4 s
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "kit"))
from example_calls import AMI, db, fastagi, inbound


async def record(port: int, out: Path, stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    login = "Action: Login\r\nActionID: rec-login\r\nUsername: crm\r\nSecret: crmsecret\r\n\r\n"
    writer.write(login.encode())
    await writer.drain()
    with out.open("wb") as sink:
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.2)
            except TimeoutError:
                continue
            if not chunk:
                break
            sink.write(chunk)
    writer.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ami-port", type=int, required=True)
    ap.add_argument("--agi-port", type=int, required=True)
    ap.add_argument("scenario", choices=["inbound_recorded", "inbound_recorded_abandoned"])
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    router = await asyncio.start_server(fastagi, "127.0.0.1", a.agi_port)
    stop = asyncio.Event()
    recorder = asyncio.create_task(record(a.ami_port, a.out, stop))
    await asyncio.sleep(1.0)
    ami = AMI(a.ami_port)
    await ami.connect()
    start = len(ami.events)
    if a.scenario == "inbound_recorded":
        await ami.action("Originate", **inbound("+79161234567", talk=6, name="Ivan Petrov"))
    else:
        await db(ami, "noanswer", "101", "1")
        await ami.action("Originate", **inbound("89031234567", talk=4, name="Caller"))
    await ami.wait_idle(start)
    if a.scenario == "inbound_recorded_abandoned":
        await db(ami, "noanswer", "101")
    await asyncio.sleep(1.0)
    stop.set()
    await recorder
    router.close()
    ami.writer.close()


if __name__ == "__main__":
    asyncio.run(main())
