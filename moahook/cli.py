"""The `moahook` console script."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from moahook import __version__
from moahook.settings import Settings, SettingsError
from storage.crypto import encode_master_key


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moahook",
        description="Relay TradingView alerts to Korea Investment & Securities orders, "
        "driven from Telegram.",
    )
    parser.add_argument("--version", action="version", version=f"moahook {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="run the service: bot, web server and fill-notice watchers")
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
    try:
        settings = Settings.load()
    except SettingsError as exc:
        print(f"moahook: configuration error: {exc}", file=sys.stderr)
        return 2
    from moahook.serve import run_serve

    return int(run_serve(settings))


if __name__ == "__main__":
    sys.exit(main())
