"""The README's commands work as written on a fresh machine: two set-up commands at the top,
every `crm-telephony …` command parses (through the installed `.venv/bin/` path, which exists
after `make install`), every `make` target exists, and the example passwords pass the rules."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from crm_core.users.schemas import UserCreate
from web.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV_BIN = ".venv/bin/crm-telephony"


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _code_lines(text: str) -> list[str]:
    """The commands of a markdown text's indented code blocks (4 spaces), comments dropped."""
    lines = []
    for line in text.splitlines():
        if line.startswith("    ") and not line.startswith("     "):
            command = line.strip().split("  #", 1)[0].strip()
            if command and not command.startswith(("#", "same =>", "|")):
                lines.append(command)
    return lines


def _cli_commands() -> list[str]:
    """Every crm-telephony command the README shows, in code blocks or in backticks."""
    found = [c for c in _code_lines(README) if "crm-telephony" in c]
    # in prose: `.venv/bin/crm-telephony demo --reset` (the bare path names the program only)
    found += re.findall(r"`(\.venv/bin/crm-telephony [^`]+)`", README.replace("\n  ", " "))
    return list(dict.fromkeys(found))


def test_two_set_up_commands_at_the_top() -> None:
    assert _code_lines(_section("Set-up on a fresh machine")) == ["make demo", "make test"]


def test_running_it_for_real_starts_with_make_install_and_the_venv() -> None:
    commands = _code_lines(_section("Running it for real"))
    assert commands[0] == "make install"
    assert all(c.startswith(VENV_BIN) for c in commands[1:]), commands


@pytest.mark.parametrize("command", _cli_commands())
def test_every_cli_command_parses(command: str) -> None:
    words = shlex.split(command.split(" #", 1)[0])
    # a fresh shell has no `crm-telephony` on its PATH: the README names the venv's
    assert words[0] == VENV_BIN, command
    args = build_parser().parse_args(words[1:])
    assert args.command in ("serve", "demo", "migrate", "user", "check")
    # and `--help` of that subcommand answers
    path = [w for w in words[1:3] if not w.startswith("-")][: 2 if args.command == "user" else 1]
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*path, "--help"])
    assert done.value.code == 0


def test_at_least_the_documented_commands_are_checked() -> None:
    subcommands = {shlex.split(c)[1] for c in _cli_commands()}
    assert {"migrate", "user", "serve", "check", "demo"} <= subcommands


def test_every_make_target_named_exists() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z_]+):", makefile, re.M))
    named = set(re.findall(r"`make ([a-z_]+)`", README))
    named |= {c.split()[1] for c in _code_lines(README) if c.startswith("make ")}
    assert named and named <= targets, named - targets


def test_example_passwords_pass_the_rules() -> None:
    users = [shlex.split(c) for c in _cli_commands() if " user add " in c]
    assert len(users) >= 2
    for words in users:
        args = build_parser().parse_args(words[1:])
        UserCreate(
            login=args.login,
            password=args.password,
            role=args.role,
            extension=args.extension,
        )
