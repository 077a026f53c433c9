"""Start-up failures an operator meets, each as one clear line (never a traceback), and
Telegram out of reach: retried with backoff while `/healthz` says why."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bot.factory import create_bot_for
from bot.standin import BotApiStandIn
from bot.startup import BotTokenRefused, TelegramStartup
from kis.sim import KisSimulator
from moahook.log import SecretRegistry
from moahook.serve import start_site
from moahook.services import open_services
from moahook.settings import Settings
from storage.crypto import encode_master_key

WRONG_TOKEN = "123456789:AAwrongwrongwrongwrongwrongwrongwrong"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(tmp_path: Path, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MOAHOOK_")}
    env.update({
        "MOAHOOK_DATA_DIR": str(tmp_path / "data"),
        "MOAHOOK_HOST": "127.0.0.1",
        "MOAHOOK_PORT": str(_free_port()),
        "MOAHOOK_MARKET_HOURS": "off",
        **extra,
    })
    return subprocess.run(
        [sys.executable, "-m", "moahook.cli", "serve"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )


async def test_a_wrong_bot_token_stops_serve_with_one_line(tmp_path: Path) -> None:
    async with BotApiStandIn() as standin:
        result = await asyncio.to_thread(
            _serve, tmp_path,
            {"MOAHOOK_BOT_TOKEN": WRONG_TOKEN, "MOAHOOK_TELEGRAM_API_URL": standin.base_url},
        )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("moahook: Telegram refused MOAHOOK_BOT_TOKEN"), result.stderr
    assert "@BotFather" in last
    assert "Traceback" not in result.stderr
    assert WRONG_TOKEN.split(":")[1] not in result.stderr + result.stdout


def test_a_misspelled_variable_and_a_bad_token_are_reported_before_anything_starts(
    tmp_path: Path,
) -> None:
    result = _serve(tmp_path, {"MOAHOOK_BOT_TOKEN": "not-a-token", "MOAHOOK_PROT": "9000"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "moahook: configuration error: MOAHOOK_BOT_TOKEN: not a Telegram bot token "
        "(expected '<digits>:<secret>' from @BotFather)",
        "moahook: configuration error: MOAHOOK_PROT: not a moahook setting "
        "(did you mean MOAHOOK_PORT?)",
    ]


def test_a_database_refusing_connections_stops_serve_with_one_line(tmp_path: Path) -> None:
    result = _serve(tmp_path, {
        "MOAHOOK_BOT_TOKEN": WRONG_TOKEN,
        "MOAHOOK_DATABASE_URL": "postgresql+asyncpg://moa:pw@127.0.0.1:1/moahook",
    })
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        "moahook: cannot connect to the database postgresql+asyncpg://moa:***@127.0.0.1:1/"
    )
    assert "Traceback" not in result.stderr


async def test_startup_retries_with_backoff_while_telegram_is_unreachable() -> None:
    port = _free_port()
    delays: list[float] = []
    standin = BotApiStandIn(port=port)

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 3:
            await standin.start()  # Telegram comes back

    bot = create_bot_for(standin.token, f"http://127.0.0.1:{port}")
    try:
        startup = TelegramStartup(bot, backoff=(1, 2, 5), sleep=sleep)
        await asyncio.wait_for(startup.run(bot.delete_webhook), 20)
        assert delays == [1, 2, 5]
        assert startup.status == "ok" and startup.username == "moahook_bot"
    finally:
        await bot.session.close()
        await standin.stop()


async def test_startup_refuses_a_token_telegram_does_not_know() -> None:
    async with BotApiStandIn() as standin:
        bot = create_bot_for(WRONG_TOKEN, standin.base_url)
        try:
            startup = TelegramStartup(bot, sleep=pytest.fail)  # type: ignore[arg-type]
            with pytest.raises(BotTokenRefused):
                await startup.run(bot.delete_webhook)
            assert "Telegram refused MOAHOOK_BOT_TOKEN" in startup.refused.result()
        finally:
            await bot.session.close()


async def test_healthz_says_why_while_telegram_is_unreachable(tmp_path: Path) -> None:
    port = _free_port()
    async with KisSimulator() as sim:
        standin = BotApiStandIn(port=port)
        settings = Settings.from_mapping({
            **sim.env_vars(),
            "MOAHOOK_BOT_TOKEN": standin.token,
            "MOAHOOK_TELEGRAM_API_URL": f"http://127.0.0.1:{port}",
            "MOAHOOK_DATA_DIR": str(tmp_path),
            "MOAHOOK_MASTER_KEY": encode_master_key(bytes(range(32))),
            "MOAHOOK_MARKET_HOURS": "off",
        })
        services = await open_services(settings, SecretRegistry())
        retrying = asyncio.Event()

        async def sleep(_delay: float) -> None:
            retrying.set()
            await asyncio.sleep(0.05)

        services.startup = TelegramStartup(services.bot, backoff=(0.05,), sleep=sleep)
        site = await start_site(services, "127.0.0.1", 0)
        try:
            await asyncio.wait_for(retrying.wait(), 10)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{site.port}") as http:
                health = await http.get("/healthz")
                assert health.status_code == 503
                assert health.json()["reason"].startswith("Telegram unreachable")
                assert standin.token.split(":")[1] not in health.text
                await standin.start()
                await asyncio.wait_for(site.bot_started.wait(), 10)
                assert (await http.get("/healthz")).status_code == 200
        finally:
            await site.runner.cleanup()
            await services.close()
            await standin.stop()


def test_start_up_warns_when_the_public_url_is_left_at_its_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from moahook.serve import warn_unreachable_public_url

    with caplog.at_level("WARNING"):
        warn_unreachable_public_url(Settings.from_mapping({}))
    [record] = caplog.records
    text = record.getMessage()
    assert "MOAHOOK_PUBLIC_URL is http://localhost:8080 (the default)" in text
    assert "not https" in text and "port is not 80 or 443" in text
    caplog.clear()
    with caplog.at_level("WARNING"):
        warn_unreachable_public_url(
            Settings.from_mapping({"MOAHOOK_PUBLIC_URL": "https://hooks.example.com"})
        )
    assert caplog.records == []


async def test_a_misspelled_variable_and_a_refused_token_are_reported_at_once(
    tmp_path: Path,
) -> None:
    async with BotApiStandIn() as standin:
        result = await asyncio.to_thread(_serve, tmp_path, {
            "MOAHOOK_BOT_TOKEN": WRONG_TOKEN,
            "MOAHOOK_TELEGRAM_API_URL": standin.base_url,
            "MOAHOOK_PROT": "9000",
        })
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (
        "moahook: configuration error: MOAHOOK_PROT: not a moahook setting "
        "(did you mean MOAHOOK_PORT?)"
    )
    assert lines[1].startswith("moahook: Telegram refused MOAHOOK_BOT_TOKEN")
    assert len(lines) == 2 and "Traceback" not in result.stderr
    assert WRONG_TOKEN.split(":")[1] not in result.stderr
