"""The key that signs tokens: refused when it is a known sample or short, else generated once.

Anyone who knows the key mints tokens for any user and role, so a key copied from a sample file
(docker-compose.yml once shipped one) is as good as none. With no SECRET_KEY the service makes
a random key on its first start and keeps it in DATA_DIR (mode 0600): tokens survive restarts,
and instances sharing DATA_DIR share the key. Instances on different machines must be given one
SECRET_KEY.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from crm_core.embedded import default_data_dir
from web.settings import Settings

logger = logging.getLogger(__name__)

MIN_LENGTH = 32  # HS256 wants a key of at least its 256 bits; 32 random characters carry more
SECRET_FILE = "secret_key"
# Placeholders seen in sample configurations, this project's own included.
KNOWN_SAMPLES = frozenset(
    {
        "change-me-to-a-long-random-string",
        "change-me",
        "changeme",
        "change_me",
        "secret",
        "secret-key",
        "secret_key",
        "your-secret-key",
        "your_secret_key",
        "supersecret",
        "password",
        "demo",
        "test",
        "development",
        "insecure",
    }
)


class UnsafeSecret(Exception):
    """The configured or stored key must not sign tokens."""


def weakness(key: str) -> str | None:
    """Why `key` must not sign tokens, or None when it may."""
    if key.strip().lower() in KNOWN_SAMPLES or "change-me" in key.lower():
        return "is a sample value published with the project"
    if len(key) < MIN_LENGTH:
        return f"is {len(key)} characters long, shorter than {MIN_LENGTH}"
    if len(set(key)) < 8:
        return "repeats a handful of characters"
    return None


def secret_path(data_dir: str) -> Path:
    return (Path(data_dir) if data_dir else default_data_dir()) / SECRET_FILE


def resolve_secret_key(settings: Settings, *, demo: bool = False) -> str:
    """Check SECRET_KEY, or load (first: make) the stored one; the key is left in `settings`.

    Raises UnsafeSecret for a sample or short key, except in the demo, which only warns: its
    users and passwords are printed on the console anyway.
    """
    configured = settings.web.secret_key
    if configured:
        problem = weakness(configured)
        if problem is None:
            return configured
        if demo:
            logger.warning("SECRET_KEY %s: acceptable for the demo only", problem)
            return configured
        raise UnsafeSecret(
            f"SECRET_KEY {problem}: anyone who knows it can sign in as any user. Set a random "
            f"one of at least {MIN_LENGTH} characters (python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'), or leave SECRET_KEY unset to have one "
            "generated and kept in DATA_DIR"
        )
    key = load_or_create(secret_path(settings.core.data_dir))
    settings.web.secret_key = key
    return key


def load_or_create(path: Path) -> str:
    """The key stored at `path`, made there first if absent (safe when two processes race)."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Written whole under another name, then linked into place: a process starting at the same
    # moment never reads a half-written key, and link (unlike rename) never replaces the file
    # another process got in first; that one's key is used.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read(path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.warning("generated a SECRET_KEY, kept in %s (mode 0600)", path)
    return key


def _read(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & 0o077:
        # readable by others: anyone on the machine could mint tokens with it
        os.chmod(path, 0o600)
        logger.warning("%s was readable by others (mode %o): made 0600", path, mode & 0o777)
    key = path.read_text().strip()
    problem = weakness(key)
    if problem is not None:
        raise UnsafeSecret(f"the key in {path} {problem}: delete the file to generate a new one")
    return key
