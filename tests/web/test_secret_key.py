"""The key that signs tokens: a sample or short one stops the service; none makes one, kept."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from crm_core.settings import CoreSettings
from telephony.settings import TelephonySettings
from web.app import create_app
from web.secret_key import UnsafeSecret, load_or_create, resolve_secret_key, weakness
from web.settings import Settings, WebSettings

SAMPLE = "change-me-to-a-long-random-string"  # what docker-compose.yml once shipped


def forged_admin_token(secret: str) -> str:
    """What the attacker made: a token for user 1 as admin, signed with a guessed key."""
    now = datetime.now(UTC)
    claims = {"sub": "1", "role": "admin", "iat": now, "exp": now + timedelta(hours=1)}
    return jwt.encode(claims, secret, algorithm="HS256")


def service_settings(database_url: str, data_dir: Path, secret: str = "") -> Settings:
    return Settings(
        core=CoreSettings(DATABASE_URL=database_url, DATA_DIR=str(data_dir)),
        web=WebSettings(SECRET_KEY=secret),
        telephony=TelephonySettings(AMI_ENABLED=False, AGI_ENABLED=False),
    )


def test_samples_short_and_repetitive_keys_are_weak() -> None:
    for key in (SAMPLE, "secret", "demo", "CHANGEME", "x" * 31, "ab" * 40, "change-me-please" * 3):
        assert weakness(key) is not None, key
    assert weakness("Zq3-8vLr_T0pWk2sYb9NcXe4Hu7Jm1Ag") is None  # 32 random characters


@pytest.mark.usefixtures("db")
async def test_the_service_refuses_to_start_with_the_sample_key(
    database_url: str, tmp_path: Path
) -> None:
    for weak in (SAMPLE, "short-secret"):
        app = create_app(service_settings(database_url, tmp_path, weak))
        with pytest.raises(UnsafeSecret, match="SECRET_KEY"):
            async with app.router.lifespan_context(app):
                pass


@pytest.mark.usefixtures("db")
async def test_without_a_key_one_is_generated_kept_0600_and_forged_tokens_fail(
    database_url: str, tmp_path: Path
) -> None:
    settings = service_settings(database_url, tmp_path)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as api:
            forged = {"Authorization": f"Bearer {forged_admin_token(SAMPLE)}"}
            body = {"login": "evil", "password": "secret1", "role": "admin"}
            assert (await api.post("/api/users", json=body, headers=forged)).status_code == 401
    stored = tmp_path / "secret_key"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    key = stored.read_text().strip()
    assert settings.web.secret_key == key and weakness(key) is None
    # the next start (another process, the same DATA_DIR) signs with the same key
    again = service_settings(database_url, tmp_path)
    assert resolve_secret_key(again) == key


def test_a_stored_key_readable_by_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    key = load_or_create(path)
    os.chmod(path, 0o644)
    assert load_or_create(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("tiny\n")
    with pytest.raises(UnsafeSecret, match="delete the file"):
        load_or_create(path)


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "secret_key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_or_create(path), range(32)))
    assert keys == {path.read_text().strip()}
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary left


def test_the_demo_accepts_a_sample_key_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = service_settings("postgresql://unused", tmp_path, "demo")
    assert resolve_secret_key(settings, demo=True) == "demo"
    assert "demo only" in caplog.text
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("key", [SAMPLE, "short"])
def test_serve_exits_at_once_saying_why(tmp_path: Path, key: str) -> None:
    env = {
        **os.environ,
        "SECRET_KEY": key,
        "DATA_DIR": str(tmp_path),
        # nothing listens there: a service that went on would fail differently
        "DATABASE_URL": "postgresql://crm:crm@127.0.0.1:1/crm",
        "AMI_ENABLED": "false",
        "AGI_ENABLED": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from web.cli import main; sys.exit(main(['serve']))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "not starting: SECRET_KEY" in done.stderr
    assert "Traceback" not in done.stderr
