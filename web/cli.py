"""`crm-telephony`: serve, demo, migrate, user add, check."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from web.settings import Settings


def _cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.embedded import resolve_database_url
    from crm_core.migrate import upgrade

    url, _server = resolve_database_url(settings.core.database_url, settings.core.data_dir)
    upgrade(url, locale=settings.core.default_locale)
    print("database migrated to the latest schema")
    return 0


async def _user_add(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from crm_core.db import unit_of_work
    from crm_core.errors import DomainError
    from crm_core.users.schemas import UserCreate
    from crm_core.users.service import create_user
    from web.compose import close_container, open_container
    from web.user_defaults import give_default_schedule

    try:
        data = UserCreate(
            login=args.login,
            password=args.password,
            role=args.role,
            extension=args.extension,
            full_name=args.name or args.login,
            timezone=args.timezone or settings.core.default_timezone,
        )
    except ValidationError as exc:
        print(
            f"invalid user: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", file=sys.stderr
        )
        return 2
    c = await open_container(settings)
    try:
        async with unit_of_work(c.sessions) as session:
            user = await create_user(session, data)
            scheduled = await give_default_schedule(session, user, settings.web.default_schedule)
        print(f"user {user.login} (id {user.id}, role {user.role}) created")
        if scheduled:
            hours = settings.web.default_schedule
            print(f"  working hours: {hours} (DEFAULT_SCHEDULE; change them at /schedules)")
        elif user.extension:
            print("  no schedule: never routed a call until given one at /schedules")
        return 0
    except DomainError as exc:
        print(f"cannot add user: {exc}", file=sys.stderr)
        return 1
    finally:
        await close_container(c)


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from web.secret_key import UnsafeSecret, resolve_secret_key
    from web.server import serve

    try:
        resolve_secret_key(settings)  # refused here with a plain message, not a traceback
    except (UnsafeSecret, OSError) as exc:
        print(f"crm-telephony: not starting: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from web.demo import ResetRefused, run_demo
    from web.secret_key import UnsafeSecret

    try:
        return int(run_demo(settings, speed=args.speed, pbx=args.pbx, reset=args.reset))
    except (UnsafeSecret, ResetRefused) as exc:  # a tampered stored key; a reset refused
        print(f"crm-telephony: not starting: {exc}", file=sys.stderr)
        return 2


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from telephony.check import run_check

    results = asyncio.run(run_check(settings.telephony, observe_seconds=args.seconds))
    failed = False
    for r in results:
        mark = {"ok": "ok  ", "skip": "skip", "warn": "warn"}.get(r.status, "FAIL")
        failed = failed or not r.ok
        print(f"[{mark}] {r.message}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm-telephony", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service (settings from the environment)")
    demo = sub.add_parser("demo", help="embedded database, demo data and a replayed PBX")
    demo.add_argument("--speed", type=float, default=1.0, help="replay speed factor")
    demo.add_argument(
        "--pbx",
        choices=("replay", "asterisk"),
        default="replay",
        help="replay: real Asterisk traffic replayed (default); asterisk: the kit's real "
        "Asterisk 22 (a source checkout, built by 'make asterisk') calling in by itself",
    )
    demo.add_argument(
        "--reset",
        action="store_true",
        help="start afresh: wipe the demo's data folder (its embedded database) first",
    )
    sub.add_parser("migrate", help="migrate the database to the latest schema")
    user = sub.add_parser("user", help="manage users").add_subparsers(
        dest="user_cmd", required=True
    )
    add = user.add_parser("add", help="add a user")
    add.add_argument("login")
    add.add_argument("--password", required=True)
    add.add_argument(
        "--role", required=True, choices=["operator", "manager", "supervisor", "admin"]
    )
    add.add_argument("--extension")
    add.add_argument("--name")
    add.add_argument("--timezone")
    check = sub.add_parser("check", help="check the connection to Asterisk and its configuration")
    check.add_argument("--seconds", type=float, default=10.0, help="how long to watch events")
    return parser


def _exit_on_sigterm() -> None:
    """SIGTERM ends the process as Ctrl-C does: through atexit, which stops embedded PostgreSQL.

    uvicorn shuts down gracefully on SIGTERM and then raises the signal again; under Python's
    default disposition that kills the process on the spot, leaving the embedded database running.
    """
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    from web.logs import setup_logging

    setup_logging(settings.web.log_level, settings.web.log_format)
    if args.command == "migrate":
        return _cmd_migrate(args, settings)
    if args.command == "user":
        return asyncio.run(_user_add(args, settings))
    if args.command in ("serve", "demo"):
        _exit_on_sigterm()
        return _cmd_serve(args, settings) if args.command == "serve" else _cmd_demo(args, settings)
    if args.command == "check":
        return _cmd_check(args, settings)
    return 2


if __name__ == "__main__":
    sys.exit(main())
