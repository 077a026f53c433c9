"""`moahook demo`: the scripted offline tour (SPEC section 2).

The real service stack (`open_services` + `build_app`: aiohttp server, aiogram polling,
SQLite, fill-notice watchers, order pipeline) runs in this process against the KIS
simulator and the local Bot API stand-in, over loopback only. One Korean user goes
through `/start`, the key flow with its 2FA code, `/webhook`, three TradingView alerts
and `/orders`; then the chat, the alerts' answers, the orders and the fills are printed.
Exit 0 only if every step happened as expected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.standin import BotApiStandIn
from kis.sim import KisSimulator
from moahook.demo_report import (
    render_chat,
    render_exchanges,
    render_fills,
    render_orders,
    section,
)
from moahook.demo_steps import DemoFailed, Steps
from moahook.demo_tour import STEP_TITLES, Report, Tour
from moahook.log import SecretRegistry, redact, setup_logging

# Each wait for the bot, the simulator or the server is bounded by this.
WAIT_S = 10.0

Prepare = Callable[[KisSimulator, BotApiStandIn], None]
"""Called once both stand-ins run and before moahook starts (tests inject faults here)."""

_QUIETED = ("httpx", "aiogram.event")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    wait_s: float = WAIT_S
    prepare: Prepare | None = None
    # Keep serving the dashboard after the tour until Enter or Ctrl-C (a terminal only).
    wait: bool = False


def run_demo(out: TextIO | None = None, options: DemoOptions | None = None) -> int:
    """`moahook demo`; returns the exit status (0 only if every step happened)."""
    stream = out if out is not None else sys.stdout
    registry = SecretRegistry()
    with _quiet_logging(registry):
        try:
            return asyncio.run(demo(stream, options or DemoOptions(), registry))
        except KeyboardInterrupt:
            # asyncio.run has cancelled the tour, and its clean-up has run.
            stream.write("\ndemo: interrupted\n")
            return 130
        except BrokenPipeError:
            # The reader went away (`moahook demo | head`); the clean-up has run. Keep
            # the interpreter's final flush from complaining about the closed pipe.
            if stream is sys.stdout:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141


async def demo(out: TextIO, options: DemoOptions, registry: SecretRegistry) -> int:
    steps = Steps(len(STEP_TITLES), out)
    _intro(out)
    failure: DemoFailed | None = None
    data_dir = tempfile.TemporaryDirectory(prefix="moahook-demo-")
    tour = Tour(Path(data_dir.name), registry, wait_s=options.wait_s, prepare=options.prepare)
    try:
        try:
            await tour.run(steps)
        except DemoFailed as exc:
            failure = exc
        report = await tour.report()
        _write_report(out, report)
        if failure is None:
            out.write(section("Dashboard (the Telegram Mini App, also a plain web page)",
                              _dashboard_lines(tour.dashboard_link, options.wait)))
            out.flush()
            if options.wait:
                await wait_for_enter_or_interrupt()
            try:
                async with steps.step(STEP_TITLES[-1]):
                    await tour.shut_down(data_dir.cleanup)
            except DemoFailed as exc:
                failure = exc
    finally:
        await tour.close()
        data_dir.cleanup()

    out.write("\n")
    if failure is not None:
        detail = redact(failure.detail, registry).replace("\n", " ")
        out.write(f"demo: FAILED at step {failure.number}: {detail}\n")
        out.flush()
        return 1
    out.write(f"demo: OK (all {steps.total} steps) in {steps.elapsed():.1f}s\n")
    out.flush()
    return 0


def _write_report(out: TextIO, report: Report) -> None:
    chat = render_chat(report.timeline, report.originals)
    out.write(section("채팅 (the chat as the user saw it)", chat))
    out.write(section("TradingView alerts → POST /hook/<token>", render_exchanges(report.alerts)))
    out.write(section("Orders (moahook storage vs KIS simulator)", render_orders(report.orders)))
    out.write(section("Fills (from the KIS fill-notice WebSocket)", render_fills(report.fills)))


def _dashboard_lines(link: str, waiting: bool) -> str:
    lines = [
        "Open this link in a browser: it signs in as the demo user, exactly as Telegram",
        "opens the Mini App (initData in the link, valid for an hour):",
        "",
        link,
    ]
    if waiting:
        lines += ["", "Serving until you press Enter (or Ctrl-C)…"]
    else:
        lines += ["", "(not waiting: run `moahook demo` in a terminal, without --no-wait, "
                  "to keep it open)"]
    return "\n".join(lines)


async def wait_for_enter_or_interrupt() -> None:
    """Until a line arrives on stdin or SIGINT; the event loop keeps serving meanwhile.
    No thread is left blocked on stdin afterwards (a reader callback, not a thread)."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    stdin = sys.stdin.fileno()

    def line_ready() -> None:
        sys.stdin.readline()
        done.set()

    loop.add_reader(stdin, line_ready)
    loop.add_signal_handler(signal.SIGINT, done.set)
    try:
        await done.wait()
    finally:
        loop.remove_reader(stdin)
        loop.remove_signal_handler(signal.SIGINT)


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # closed or replaced stdin
        return False


def _intro(out: TextIO) -> None:
    out.write(
        "moahook demo: the real service stack in this process (web server, Telegram bot "
        "polling, SQLite in a temporary directory, a freshly generated master key) against "
        "the built-in KIS simulator (paper account 12345678-01) and a local stand-in for "
        "the Telegram Bot API. Loopback only: nothing leaves this machine.\n"
        "MOAHOOK_MARKET_HOURS=off: orders go through at any hour (a real server refuses "
        "them outside KRX trading hours, 09:00-15:30 KST).\n\n"
    )
    out.flush()


@contextlib.contextmanager
def _quiet_logging(registry: SecretRegistry) -> Iterator[None]:
    """Library logs at WARNING through the redacting set-up, restored afterwards (the demo
    also runs inside tests)."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved = {name: logging.getLogger(name).level for name in _QUIETED}
    setup_logging("WARNING", registry)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
