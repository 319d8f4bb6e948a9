"""Shared bench plumbing: a throwaway embedded PostgreSQL at head, and percentile printing."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any


def embedded_database() -> tuple[str, Any]:
    from crm_core.embedded import start_embedded
    from crm_core.migrate import upgrade

    url, server = start_embedded(Path(tempfile.mkdtemp(prefix="crm-bench-")) / "pg", throwaway=True)
    upgrade(url)
    return url, server


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(label: str, samples_ms: list[float]) -> str:
    return (
        f"{label:<44} n={len(samples_ms):>6}  p50={pct(samples_ms, 0.50):7.3f} ms  "
        f"p99={pct(samples_ms, 0.99):7.3f} ms  mean={statistics.fmean(samples_ms):7.3f} ms"
    )
