"""The bot's side of the dashboard: `/app`, the chat menu button, `/keys` offering the
dashboard first (https only, Telegram's rule), usernames remembered for browser sign-in,
and the Secure cookie on an https public URL."""

from __future__ import annotations

from pathlib import Path

from .support import WAIT_S, running_stack

HTTPS_URL = "https://moahook.example"


async def test_https_public_url_gives_menu_button_app_button_and_keys_offer(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path, public_url=HTTPS_URL) as stack:
        menu = stack.standin.menu_buttons[""]
        assert menu["type"] == "web_app"
        assert menu["web_app"] == {"url": f"{HTTPS_URL}/app"}

        chat = stack.user(6001)
        mark = chat.mark()
        await chat.send_text("/app")
        opened = await chat.wait_for_bot_message("웹 대시보드", WAIT_S, after=mark)
        assert opened.buttons == (("대시보드 열기",),)
        markup = [c for c in stack.standin.calls_to("sendMessage") if "web_app" in
                  c.params.get("reply_markup", "")][-1].json_param("reply_markup")
        assert markup["inline_keyboard"][0][0]["web_app"] == {  # type: ignore[index]
            "url": f"{HTTPS_URL}/app"
        }

        mark = chat.mark()
        await chat.send_text("/keys")
        offer = await chat.wait_for_bot_message("권장: 웹 대시보드", WAIT_S, after=mark)
        assert offer.buttons == (("대시보드 열기",),)
        await chat.wait_for_bot_message("1/5 App Key", WAIT_S, after=mark)  # chat flow too

        # The session cookie is Secure (and __Host-) when users reach moahook over https.
        response = await stack.client().sign_in(stack.bot_token, 6002)
        cookie = response.set_cookie[0]
        assert cookie.startswith("__Host-moahook_session=") and "Secure" in cookie


async def test_http_public_url_gives_the_browser_address_and_no_buttons(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        assert stack.standin.menu_buttons == {}
        chat = stack.user(6003, username="Kim_Browser")
        mark = chat.mark()
        await chat.send_text("/app")
        reply = await chat.wait_for_bot_message("https가 아니어서", WAIT_S, after=mark)
        assert f"{stack.public_url}/app" in reply.text and reply.buttons == ()
        mark = chat.mark()
        await chat.send_text("/keys")
        first = await chat.wait_for_bot_message("1/5", WAIT_S, after=mark)
        assert "대시보드" not in first.text
        # What the bot saw is what browser sign-in finds the user by.
        user = await stack.services.storage.users.by_username("kim_browser")
        assert user is not None and user.telegram_id == 6003
