"""The ``callcenter`` command.

    callcenter serve [--config DIR]         run SIP, media, IVR, routing, CRM and HTTP in one loop
    callcenter check-config [DIR]           validate a config directory and the IVR flows; exit 1 on errors
    callcenter db upgrade [--config DIR]    apply CRM schema migrations
    callcenter crm outbox list [--dead]     show pending / dead-lettered pushes
    callcenter crm outbox replay [ID ...]   re-queue dead letters (all when no ID is given)
    callcenter email outbox list [--dead]   show outbound mail not sent (pending, dead, no relay)
    callcenter email outbox replay [ID ...] re-queue dead mail (--no-relay: also mail kept without a relay)
    callcenter recordings purge [--dry-run] delete call recordings past retention, each one logged
    callcenter hash-password                print an argon2 hash (desktop logins) read from stdin
    callcenter ha1 USER [--realm R]         print SIP HA1 hashes for agents.yaml (password from stdin)
    callcenter simulate ...                 what-if: replay recorded or synthetic traffic (simulate_cli.py)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import json
import sys
from pathlib import Path

from callcenter.configerrors import ConfigError

DEFAULT_CONFIG = Path("config")


def _load(directory: Path):  # -> AppConfig
    from callcenter.config import load_config

    return load_config(directory)


def _read_secret(prompt: str) -> str:
    return getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")


def cmd_check_config(args: argparse.Namespace) -> int:
    from callcenter.configcheck import check_all

    cfg, _flows = check_all(args.directory, args.flows)  # a ConfigError is printed by main()
    print(f"configuration OK: {cfg.directory} and flows in {cfg.flows_dir}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from callcenter.configcheck import check_all
    from callcenter.preflight import missing_system_packages
    from callcenter.server import run_server

    cfg, _flows = check_all(args.config, args.flows)  # the same checks as check-config
    missing = missing_system_packages(cfg)
    for line in missing:
        print(f"callcenter: cannot start: {line}", file=sys.stderr)
    if missing:
        return 1
    return run_server(cfg, flows_dir=cfg.flows_dir)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from crm_bridge.admin import upgrade

    cfg = _load(args.config)
    asyncio.run(upgrade(cfg.server.database.url))
    print("database schema is up to date")
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from crm_bridge.admin import outbox_list, outbox_replay

    cfg = _load(args.config)
    url = cfg.server.database.url
    db_file = cfg.server.database.sqlite_file()
    if db_file is not None and not db_file.is_file():
        # opening it would create an empty database (and its directory) here
        print(f"callcenter: no CRM database at {db_file} (from {cfg.directory / 'server.yaml'}: "
              "database.url); the server creates it when it first starts", file=sys.stderr)  # fmt: skip
        return 1
    try:
        if args.action == "list":
            rows = asyncio.run(outbox_list(url, dead_only=args.dead))
            for row in rows:
                print(json.dumps(row, default=str))
            if not rows:
                print("no dead letters" if args.dead else "nothing pending")
            return 0
        n = asyncio.run(outbox_replay(url, args.ids or None))
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"callcenter: cannot read the CRM outbox at {url}: {reason} "
              f"(run: callcenter db upgrade --config {cfg.directory})", file=sys.stderr)  # fmt: skip
        return 1
    print(f"re-queued {n} message(s)")
    return 0


def cmd_email_outbox(args: argparse.Namespace) -> int:
    """The outbound mail queue (callcenter/email/admin.py); ``--url`` instead of the config's database."""
    from sqlalchemy.exc import SQLAlchemyError

    from callcenter.email.admin import outbox_list, outbox_replay

    url = args.url or _load(args.config).server.database.url
    try:
        if args.action == "list":
            rows = asyncio.run(outbox_list(url, dead_only=args.dead))
            for row in rows:
                print(json.dumps(row, default=str))
            if not rows:
                print("no dead letters" if args.dead else "nothing waiting")
            return 0
        n = asyncio.run(outbox_replay(url, args.ids or None, no_relay=args.no_relay))
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"callcenter: cannot read the email outbox at {url}: {reason}", file=sys.stderr)
        return 1
    print(f"re-queued {n} message(s)")
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    from argon2 import PasswordHasher

    print(PasswordHasher().hash(_read_secret("password: ")))
    return 0


def cmd_ha1(args: argparse.Namespace) -> int:
    password = _read_secret("SIP password: ")
    material = f"{args.user}:{args.realm}:{password}".encode()
    print(f"ha1_md5: {hashlib.md5(material).hexdigest()}")
    print(f"ha1_sha256: {hashlib.sha256(material).hexdigest()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="callcenter", description="self-hosted contact-center server")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the server")
    s.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    flows_help = "IVR flows directory (default: server.yaml flows_dir, else the shipped ivr_flows/)"
    s.add_argument("--flows", type=Path, default=None, help=flows_help)
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("check-config", help="validate configuration and flows")
    c.add_argument("directory", type=Path, nargs="?", default=DEFAULT_CONFIG)
    c.add_argument("--flows", type=Path, default=None, help=flows_help)
    c.set_defaults(func=cmd_check_config)

    db = sub.add_parser("db", help="database administration")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply schema migrations")
    up.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    up.set_defaults(func=cmd_db_upgrade)

    crm = sub.add_parser("crm", help="CRM bridge administration")
    crm_sub = crm.add_subparsers(dest="crm_command", required=True)
    ob = crm_sub.add_parser("outbox", help="inspect and replay pushes")
    ob.add_argument("action", choices=["list", "replay"])
    ob.add_argument("ids", nargs="*")
    ob.add_argument("--dead", action="store_true", help="list dead letters only")
    ob.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    ob.set_defaults(func=cmd_outbox)

    em = sub.add_parser("email", help="email channel administration")
    em_sub = em.add_subparsers(dest="email_command", required=True)
    eo = em_sub.add_parser("outbox", help="inspect and replay outbound mail")
    eo.add_argument("action", choices=["list", "replay"])
    eo.add_argument("ids", nargs="*")
    eo.add_argument("--dead", action="store_true", help="list dead letters only")
    eo.add_argument("--no-relay", action="store_true", help="replay also mail kept for lack of a relay")
    eo.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    eo.add_argument("--url", default=None, help="database URL (default: the config's database.url)")
    eo.set_defaults(func=cmd_email_outbox)

    hp = sub.add_parser("hash-password", help="argon2 hash for a desktop login")
    hp.set_defaults(func=cmd_hash_password)

    h = sub.add_parser("ha1", help="SIP HA1 hashes for agents.yaml")
    h.add_argument("user")
    h.add_argument("--realm", default="callcenter.local")
    h.set_defaults(func=cmd_ha1)

    from callcenter.recording.purge import register as register_recordings
    from callcenter.simulate_cli import register as register_simulate

    register_recordings(sub, DEFAULT_CONFIG)  # callcenter recordings purge (recording/purge.py)

    register_simulate(sub, DEFAULT_CONFIG)  # callcenter simulate: the what-if simulator
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(exc, file=sys.stderr)  # one line per problem: file: key: reason
        return 1


if __name__ == "__main__":
    sys.exit(main())
