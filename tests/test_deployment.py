"""docker-compose.yml, docker/ and the sample Asterisk configuration agree with the service.

No Docker engine runs here or in CI, so the compose set-up is checked by reading it: every file it
mounts or copies exists, the service accepts its environment, and Asterisk's side (dialplan, AMI
user, queue, phones) points at what the service listens on and expects.
"""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from telephony.ami_fields import compile_agent_pattern
from telephony.check import NEEDED_CLASSES
from web.secret_key import resolve_secret_key, weakness
from web.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ASTERISK = ROOT / "docker" / "asterisk"
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
CRM = next(name for name, s in SERVICES.items() if "build" in s)  # the service's own image
ENV: dict[str, str] = SERVICES[CRM]["environment"]


def asterisk_conf(name: str) -> configparser.RawConfigParser:
    # Asterisk's files repeat keys (permit, member) and sections (pjsip): the last one is kept.
    conf = configparser.RawConfigParser(strict=False, inline_comment_prefixes=(";",))
    conf.read_string((ASTERISK / name).read_text())
    return conf


def test_every_mounted_and_copied_file_exists() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).is_file(), f"{name} mounts {source}, which is missing"
    build = SERVICES[CRM]["build"]
    dockerfile = (ROOT / build["context"] / build["dockerfile"]).read_text()
    copied = {
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    }
    assert all((ROOT / source).exists() for source in copied), copied
    # every package the project installs is in the image
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, packages - copied


def test_the_service_accepts_the_compose_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, str(value))
    settings = Settings()
    assert settings.core.database_url == ENV["DATABASE_URL"]
    database_host = re.search(r"@([^:/]+)", settings.core.database_url)
    assert database_host is not None and database_host[1] in SERVICES
    assert settings.telephony.ami_host in SERVICES
    assert settings.telephony.agi_host == "0.0.0.0"  # reached from the asterisk container
    # ... and only from it: the service whose dialplan asks the router is the one allowed
    pbx = next(
        n for n, s in SERVICES.items() if any("extensions.conf" in v for v in s.get("volumes", []))
    )
    assert settings.telephony.agi_allowed_hosts == [pbx, "127.0.0.1"]  # and `check` inside
    assert settings.core.company_numbers == json.loads(ENV["COMPANY_NUMBERS"])


def test_compose_ships_no_usable_secret_and_keeps_the_generated_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A sample SECRET_KEY in the file would be everyone's key: none is given, and the one the
    service makes on its first start lives on a volume (DATA_DIR), surviving re-created images."""
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if "SECRET_KEY" in key:
                assert weakness(str(value)) is not None, f"{name} ships a usable {key}"
    assert "SECRET_KEY" not in ENV
    volumes = {v.split(":")[1]: v.split(":")[0] for v in SERVICES[CRM]["volumes"]}
    assert volumes.get(ENV["DATA_DIR"]) in COMPOSE["volumes"], "DATA_DIR is not on a volume"
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert f"chown crm:crm {ENV['DATA_DIR']}" in dockerfile  # the service writes there
    for key, value in ENV.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    settings = Settings()
    key = resolve_secret_key(settings)
    assert (tmp_path / "secret_key").read_text().strip() == key and weakness(key) is None


def test_the_dialplan_asks_the_service_and_falls_back_to_a_real_queue() -> None:
    dialplan = (ASTERISK / "extensions.conf").read_text()
    agi = re.search(r"^\[([\w-]+)\][^\[]*?AGI\(agi://([^:/]+):(\d+)/route\)", dialplan, re.M)
    assert agi is not None
    context, host, port = agi.groups()
    assert host == CRM and int(port) == int(ENV["AGI_PORT"])
    assert context in json.loads(ENV["INBOUND_CONTEXTS"])
    queue = re.search(r"Queue\((\w+)", dialplan)
    assert queue is not None
    section = re.search(
        rf"^\[{queue[1]}\]\n(.*?)(?=^\[|\Z)", (ASTERISK / "queues.conf").read_text(), re.M | re.S
    )
    assert section is not None, f"no queue {queue[1]} in queues.conf"
    # its members are phones the service recognises as agents, and they are in pjsip.conf
    members = re.findall(r"^member\s*=>\s*(\S+)", section[1], re.M)
    agent = compile_agent_pattern(Settings().telephony.agent_channel_pattern)
    extensions = []
    for member in members:
        found = agent.search(f"{member}-00000001")  # a channel of that phone
        assert found is not None, member
        extensions.append(found["ext"])
    assert extensions == ["101", "102"]
    assert all(asterisk_conf("pjsip.conf").has_section(ext) for ext in extensions)


def test_the_ami_user_may_do_what_the_service_needs() -> None:
    manager = asterisk_conf("manager.conf")
    assert manager.get("general", "timestampevents") == "yes"  # ring and talk times
    assert int(manager.get("general", "port")) == int(ENV["AMI_PORT"])
    user = ENV["AMI_USERNAME"]
    assert manager.get(user, "secret") == ENV["AMI_SECRET"]
    read = {c.strip() for c in manager.get(user, "read").split(",")}
    assert set(NEEDED_CLASSES) <= read
    assert "originate" in {c.strip() for c in manager.get(user, "write").split(",")}
