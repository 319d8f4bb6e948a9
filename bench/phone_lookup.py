"""Client lookup by phone among 1,000,000 stored phones, beside a primary-key lookup.

    .venv/bin/python bench/phone_lookup.py [--phones 1000000] [--lookups 20000]

Target (issue 3): p99 of the service's lookup by any written form under 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from bench._common import embedded_database, row
from crm_core.clients.repository import client_id_by_phone
from crm_core.db import make_engine, make_session_factory
from crm_core.phones import normalize_phone


def _number(i: int) -> str:
    return f"+7916{i:07d}"


async def _seed(dsn: str, n: int) -> None:
    conn = await asyncpg.connect(dsn)
    t0 = time.perf_counter()
    await conn.copy_records_to_table(
        "clients",
        records=((i, "person", f"Client {i}", 0, "") for i in range(1, n + 1)),
        columns=["id", "kind", "name", "readiness", "notes"],
    )
    await conn.copy_records_to_table(
        "client_phones",
        records=((i, i, _number(i), _number(i)) for i in range(1, n + 1)),
        columns=["id", "client_id", "e164", "raw"],
    )
    await conn.execute("ANALYZE clients; ANALYZE client_phones")
    await conn.close()
    print(f"seeded {n:,} clients and phones in {time.perf_counter() - t0:.1f} s")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phones", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=20_000)
    args = ap.parse_args()
    url, _server = embedded_database()
    await _seed(url, args.phones)
    rng = random.Random(7)
    # written the way people write them: "8 (916) 000-12-34"
    written = [
        (lambda d: f"8 ({d[2:5]}) {d[5:8]}-{d[8:10]}-{d[10:12]}")(
            _number(rng.randint(1, args.phones))
        )
        for _ in range(args.lookups)
    ]

    engine = make_engine(url, pool_size=1)
    sessions = make_session_factory(engine)
    raw = await asyncpg.connect(url)
    pk_stmt = await raw.prepare("SELECT id FROM clients WHERE id = $1")
    phone_stmt = await raw.prepare("SELECT client_id FROM client_phones WHERE e164 = $1")

    pk_ms: list[float] = []
    raw_ms: list[float] = []
    svc_ms: list[float] = []
    async with sessions() as session:
        for form in written[:500]:  # warm-up: plan caches, buffers
            await client_id_by_phone(session, normalize_phone(form, "RU"))
        for form in written:
            key = rng.randint(1, args.phones)
            t = time.perf_counter()
            await pk_stmt.fetchval(key)
            pk_ms.append((time.perf_counter() - t) * 1000)

            t = time.perf_counter()
            found = await phone_stmt.fetchval(normalize_phone(form, "RU"))
            raw_ms.append((time.perf_counter() - t) * 1000)
            assert found is not None

            normalize_phone.cache_clear()  # count the normalisation every time, as a cold number
            t = time.perf_counter()
            cid = await client_id_by_phone(session, normalize_phone(form, "RU"))
            svc_ms.append((time.perf_counter() - t) * 1000)
            assert cid is not None
    await raw.close()
    await engine.dispose()
    print(f"lookups among {args.phones:,} stored phones")
    print(row("primary key (asyncpg prepared)", pk_ms))
    print(row("phone, normalised + asyncpg prepared", raw_ms))
    print(row("phone, service path (normalise + SQLAlchemy)", svc_ms))
    from bench._common import pct

    p99 = pct(svc_ms, 0.99)
    print(
        f"target p99 < 2 ms for the service path: {'MET' if p99 < 2 else 'NOT MET'} ({p99:.3f} ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
