"""The `moahook` console script."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from moahook import __version__
from moahook.settings import Settings, SettingsError, read_environment
from moahook.token_check import token_refused_by_telegram
from storage.crypto import encode_master_key


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moahook",
        description="Relay TradingView alerts to Korea Investment & Securities orders, "
        "driven from Telegram.",
    )
    parser.add_argument("--version", action="version", version=f"moahook {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser(
        "serve",
        help="run the service: bot, web server and fill-notice watchers",
        description="Run the service: Telegram bot, web server and fill-notice watchers.",
        epilog=_variables_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate = sub.add_parser(
        "migrate",
        help="bring the database schema to the newest revision (serve does it at start too)",
        description="Apply the database migrations (Alembic) to MOAHOOK_DATABASE_URL.",
    )
    migrate.add_argument(
        "--check", action="store_true",
        help="change nothing; exit 0 when the schema is current, 1 when migrations are due",
    )
    demo = sub.add_parser("demo", help="offline tour against the built-in KIS simulator")
    demo.add_argument(
        "--no-wait", action="store_true",
        help="exit after the tour instead of serving the dashboard until Enter (as when "
        "stdin is not a terminal)",
    )
    sim = sub.add_parser("sim", help="run the KIS simulator alone on 127.0.0.1")
    sim.add_argument("--port", type=int, default=0, help="REST port (default: any free)")
    sim.add_argument("--ws-port", type=int, default=0, help="WebSocket port (default: any free)")
    sub.add_parser("gen-key", help="print a fresh master key for MOAHOOK_MASTER_KEY")
    return parser


def _variables_help() -> str:
    """Every MOAHOOK_* variable with its default, from the settings themselves."""
    rows = Settings.variables()
    width = max(len(v.name) for v in rows)
    lines = ["environment variables (also read from ./.env; the environment wins):"]
    for variable in rows:
        lines.append(f"  {variable.name:<{width}}  {variable.meaning}")
        lines.append(f"  {'':<{width}}  default: {variable.default}")
    return "\n".join(lines)


def _settings(check_token: bool = False) -> Settings | None:
    env = read_environment()
    try:
        return Settings.load(env, None)
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"moahook: configuration error: {problem}", file=sys.stderr)
        if check_token:  # every error at once: Telegram's verdict on the token too
            refused = token_refused_by_telegram(env)
            if refused:
                print(f"moahook: {refused}", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "gen-key":
        print(encode_master_key(os.urandom(32)))
        return 0
    if args.command == "sim":
        from kis.sim.cli import run_sim

        return int(run_sim(port=args.port, ws_port=args.ws_port))
    if args.command == "demo":
        from moahook.demo import DemoOptions, run_demo, stdin_is_terminal

        return int(run_demo(options=DemoOptions(wait=stdin_is_terminal() and not args.no_wait)))
    settings = _settings(check_token=args.command == "serve")
    if settings is None:
        return 2
    if args.command == "migrate":
        from moahook.migrate import run_migrate

        return int(run_migrate(settings, check=args.check))
    from moahook.serve import run_serve

    return int(run_serve(settings))


if __name__ == "__main__":
    sys.exit(main())
