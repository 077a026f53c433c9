"""`moahook serve` as wired for users: settings → services → web app + bot, over loopback
against the KIS simulator and the Bot API stand-in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from bot.standin import BotApiStandIn
from kis.sim import KisSimulator
from moahook.log import SecretRegistry
from moahook.serve import NO_TOKEN, run_serve, start_site
from moahook.services import open_services
from moahook.settings import Settings
from storage.crypto import encode_master_key


def test_serve_without_a_bot_token_says_how_to_get_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_serve(Settings.from_mapping({})) == 2
    err = capsys.readouterr().err
    assert NO_TOKEN in err
    assert "make demo" in err


async def test_serve_answers_health_metrics_and_start(tmp_path: Path) -> None:
    async with KisSimulator() as sim, BotApiStandIn() as standin:
        settings = Settings.from_mapping(
            {
                **sim.env_vars(),
                "MOAHOOK_BOT_TOKEN": standin.token,
                "MOAHOOK_TELEGRAM_API_URL": standin.base_url,
                "MOAHOOK_DATA_DIR": str(tmp_path),
                "MOAHOOK_MASTER_KEY": encode_master_key(bytes(range(32))),
                "MOAHOOK_PUBLIC_URL": "https://hooks.example",
                "MOAHOOK_MARKET_HOURS": "off",
            }
        )
        services = await open_services(settings, SecretRegistry())
        site = await start_site(services, "127.0.0.1", 0)
        try:
            await asyncio.wait_for(site.bot_started.wait(), 10)
            base = f"http://127.0.0.1:{site.port}"
            async with httpx.AsyncClient(base_url=base) as http:
                health = await http.get("/healthz")
                assert health.status_code == 200
                assert health.json() == {"status": "ok"}
                metrics = await http.get("/metrics")
                assert metrics.status_code == 200
                assert "moahook_alerts_received" in metrics.text
                missing = await http.post("/hook/" + "x" * 32, content=b"{}")
                assert missing.status_code in (400, 404)

            user = standin.user(7001, "Mina")
            mark = user.mark()
            await user.send_text("/start")
            reply = await user.wait_for_bot_message("https://hooks.example/hook/", after=mark)
            token = reply.text.split("/hook/")[1].split()[0]
            assert len(token) >= 22
            assert standin.commands("ko")
        finally:
            await site.runner.cleanup()
            await services.close()


async def test_test_command_sizes_an_alert_in_the_chat_and_orders_nothing(
    tmp_path: Path,
) -> None:
    """`/test <message>` through the wired service: the bot asks the pipeline's dry run
    (fresh KIS figures) and answers in Korean; the simulator saw no order request."""
    from kis.sim import demo_account

    async with KisSimulator() as sim, BotApiStandIn() as standin:
        settings = Settings.from_mapping({
            **sim.env_vars(),
            "MOAHOOK_BOT_TOKEN": standin.token,
            "MOAHOOK_TELEGRAM_API_URL": standin.base_url,
            "MOAHOOK_DATA_DIR": str(tmp_path),
            "MOAHOOK_MASTER_KEY": encode_master_key(bytes(range(32))),
            "MOAHOOK_MARKET_HOURS": "off",
        })
        services = await open_services(settings, SecretRegistry())
        site = await start_site(services, "127.0.0.1", 0)
        try:
            await asyncio.wait_for(site.bot_started.wait(), 10)
            user = standin.user(7002, "Jun")
            mark = user.mark()
            await user.send_text("/start")
            await user.wait_for_bot_message("/hook/", after=mark)
            record = await services.storage.users.by_telegram_id(7002)
            assert record is not None
            account = demo_account()
            await services.storage.key_sets.save(
                record.id, account.env, app_key=account.app_key, app_secret=account.app_secret,
                cano=account.cano, product_code=account.product_code, hts_id=account.hts_id,
            )
            await services.storage.key_sets.record_checks(record.id, account.env, {}, True)
            await services.watchers.sync(record.id)
            await services.watchers.wait_settled(10)

            mark = user.mark()
            # As a phone sends it: typographic quotes.
            await user.send_text('/test {“ticker”:“KRX:005930”,“action”:“buy”,“amount”:“300000”}')
            reply = await user.wait_for_bot_message("🧪", after=mark)
            assert "주문은 보내지 않았습니다" in reply.text
            assert "지금 받으면 주문합니다: 005930 매수 4주 시장가" in reply.text, reply.text
            assert "현재가 71,000원" in reply.text
            assert [r for r in sim.requests if r.endpoint == "order"] == []
            assert sim.orders == []

            mark = user.mark()
            await user.send_text("/test")
            usage = await user.wait_for_bot_message("/test", after=mark)
            assert "주문은 보내지 않고" in usage.text
        finally:
            await site.runner.cleanup()
            await services.close()
