"""The conversation state of a flow in progress lives in the database, encrypted: it
survives the bot's restart (or the polling moving to another instance) and never
holds a secret in clear."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from kis.sim import demo_account
from tests.bot.test_bot_e2e import CODE, running_stack, say


async def test_keys_flow_survives_a_restart_and_never_stores_the_secret_in_clear(
    tmp_path: Path,
) -> None:
    account = demo_account()
    token, master_key = "123456789:AAconversation-test-token", os.urandom(32)
    async with running_stack(tmp_path, bot_token=token, master_key=master_key) as first:
        user = first.standin.user(7101, "Hana", language_code="en")
        await say(user, "/start", "moahook")
        await say(user, "/keys", "1/5")
        await say(user, account.app_key, "2/5")
        await say(user, account.app_secret, "3/5")
        # Mid-flow: the App Secret waits for the 2FA code, encrypted in the database.
        async with first.storage.db.engine.connect() as conn:
            await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        raw = (tmp_path / "bot.db").read_bytes()
        assert account.app_secret[:24].encode() not in raw
        assert account.app_key.encode() not in raw
        keys = await first.storage.conversations.keys()
        assert len(keys) == 1
        assert (await first.storage.conversations.get_data(keys[0])).get("app_secret") == (
            account.app_secret
        )
    # A new process (another instance taking over the bot) carries the flow on.
    async with running_stack(tmp_path, bot_token=token, master_key=master_key) as second:
        user = second.standin.user(7101, "Hana", language_code="en")
        await say(user, account.account_number, "4/5")
        await say(user, account.hts_id, "5/5")
        mark = user.mark()
        await user.press("모의투자 (Paper)")
        code_message = await user.wait_for_bot_message("moahook", after=mark)
        found = CODE.search(code_message.text)
        assert found is not None
        mark = user.mark()
        await user.send_text(found.group(1))
        checklist = await user.wait_for_bot_message(
            lambda m: "⏳" not in m.text and ("✅" in m.text or "❌" in m.text), after=mark,
            timeout=15,
        )
        assert checklist.text.count("✅") == 3, checklist.text
        assert await second.storage.conversations.keys() == []
