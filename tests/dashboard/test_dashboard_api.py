"""The dashboard's JSON API over real sockets, on the real composition (bot, storage,
pipeline, watchers) against the KIS simulator and the Bot API stand-in."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from sqlalchemy import text

from kis.sim import DEMO_APP_KEY, DEMO_APP_SECRET, demo_account

from .support import WAIT_S, Client, Stack, make_init_data, running_stack, tg_user

ALICE, BOB = 5001, 5002


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as running:
        yield running


def keys_body(**overrides: str) -> dict[str, str]:
    account = demo_account()
    body = {
        "env": "paper", "app_key": account.app_key, "app_secret": account.app_secret,
        "account": account.account_number, "hts_id": account.hts_id,
    }
    body.update(overrides)
    return body


async def register_keys(stack: Stack, client: Client, user_id: int) -> None:
    """Keys through the API with the code the bot sent, then the checks to their end."""
    user = stack.user(user_id)
    mark = user.mark()
    first = await client.call("POST", "/app/api/keys", keys_body())
    assert (first.status, first.body) == (202, {"status": "code_sent"}), first.text
    code = await stack.code_for(user, mark)
    saved = await client.call("POST", "/app/api/keys", {**keys_body(), "code": code})
    assert saved.status == 202 and saved.body["status"] == "checking", saved.text
    await stack.checks_idle()


# --- sign-in with initData --------------------------------------------------------------


async def test_valid_init_data_opens_a_session_with_a_strict_cookie(stack: Stack) -> None:
    client = stack.client()
    response = await client.sign_in(stack.bot_token, ALICE, username="Alice_Trades")
    assert len(response.set_cookie) == 1
    cookie = response.set_cookie[0]
    assert cookie.startswith("moahook_session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "SameSite=Strict" in cookie and "Max-Age=43200" in cookie and "Path=/" in cookie
    assert "secure" not in attributes  # http public URL: a Secure cookie would never return
    assert response.body["user"] == {
        "telegram_id": ALICE, "username": "alice_trades", "lang": "ko", "env": "paper",
        "paused": False,
    }
    # The cookie and the CSRF token are enough for the next calls.
    current = await client.call("GET", "/app/api/session")
    assert current.status == 200 and current.body["csrf"] == client.csrf


def tampered(init_data: str) -> str:
    fields = dict(parse_qsl(init_data))
    fields["user"] = fields["user"].replace(str(ALICE), str(BOB))
    return urlencode(fields)


@pytest.mark.parametrize(
    ("case", "build"),
    [
        ("tampered", lambda token: tampered(make_init_data(token, tg_user(ALICE)))),
        ("stale", lambda token: make_init_data(
            token, tg_user(ALICE), auth_date=int(time.time()) - 3601)),
        ("another bot's token", lambda token: make_init_data(
            "123456:another-bots-token", tg_user(ALICE))),
        ("no user", lambda token: make_init_data(token, None)),
        ("no hash", lambda token: "auth_date=1&user=%7B%7D"),
        ("non-ASCII hash", lambda token: make_init_data(token, tg_user(ALICE)) + "x" + "%C3%A9"),
        ("garbage", lambda token: "%%%==&&"),
        ("empty", lambda token: ""),
    ],
)
async def test_bad_init_data_is_refused_with_401_and_no_session(
    stack: Stack, case: str, build: object
) -> None:
    client = stack.client()
    init = build(stack.bot_token)  # type: ignore[operator]
    response = await client.call("POST", "/app/api/session", {"init_data": init})
    assert response.status == 401, (case, response.text)
    assert isinstance(response.body.get("error"), str) and response.body["error"]
    assert response.set_cookie == []
    assert (await client.call("GET", "/app/api/overview")).status == 401
    assert await stack.services.storage.users.by_telegram_id(BOB) is None


async def test_init_data_at_the_age_limit_is_still_accepted(stack: Stack) -> None:
    init = make_init_data(stack.bot_token, tg_user(ALICE), auth_date=int(time.time()) - 3590)
    response = await stack.client().call("POST", "/app/api/session", {"init_data": init})
    assert response.status == 200, response.text


async def test_session_request_that_is_not_json_gets_a_clear_4xx(stack: Stack) -> None:
    client = stack.client()
    form = await client.call(
        "POST", "/app/api/session", None,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status == 415 and "application/json" in form.body["error"]
    empty = await client.call(
        "POST", "/app/api/session", None, headers={"Content-Type": "application/json"}
    )
    assert empty.status == 400 and empty.body["field"] == "init_data"
    async with stack.http.post(
        stack.base_url + "/app/api/session", data=b'{"init_data": ',
        headers={"Content-Type": "application/json"},
    ) as broken:
        assert broken.status == 400 and "not valid JSON" in await broken.text()
    async with stack.http.post(
        stack.base_url + "/app/api/session", data=b"x" * 20000,
        headers={"Content-Type": "application/json"},
    ) as huge:
        assert huge.status == 413
    for form_type in ("text/plain", "multipart/form-data; boundary=x"):
        refused = await client.call(
            "POST", "/app/api/session", None, headers={"Content-Type": form_type}
        )
        assert refused.status == 415, form_type
    # A client that names no type at all is read as JSON (the contract's body is JSON).
    async with stack.http.post(
        stack.base_url + "/app/api/session", data=b'{"init_data": "x"}',
        skip_auto_headers=["Content-Type"],
    ) as untyped:
        assert untyped.status == 401
    wrong_type = await client.call("POST", "/app/api/session", {"init_data": 5})
    assert wrong_type.status == 400 and wrong_type.body["field"] == "init_data"
    not_object = await client.call("POST", "/app/api/session", ["x"])
    assert not_object.status == 400


# --- what every change needs -------------------------------------------------------------

CHANGES = [
    ("POST", "/app/api/keys", keys_body()),
    ("POST", "/app/api/keys/recheck", {"env": "paper"}),
    ("POST", "/app/api/mode", {"env": "real"}),
    ("POST", "/app/api/pause", {"paused": True}),
    ("POST", "/app/api/webhook/rotate", {}),
    ("POST", "/app/api/lang", {"lang": "en"}),
    ("DELETE", "/app/api/session", None),
]


async def test_every_state_change_without_session_or_csrf_is_refused_and_changes_nothing(
    stack: Stack,
) -> None:
    client = stack.client()
    await client.sign_in(stack.bot_token, ALICE)
    chat = stack.user(ALICE)
    valid_csrf = client.csrf
    for method, path, body in CHANGES:
        anonymous = await client.call(method, path, body, cookie=False, csrf=False)
        assert anonymous.status == 401 and anonymous.body["code"] == "no_session", path
        no_csrf = await client.call(method, path, body, csrf=False)
        assert no_csrf.status == 403 and no_csrf.body["code"] == "csrf", path
        client.csrf = "0" * 64
        wrong = await client.call(method, path, body)
        client.csrf = valid_csrf
        assert wrong.status == 403 and wrong.body["code"] == "csrf", path
    user = await stack.services.storage.users.by_telegram_id(ALICE)
    assert user is not None and not user.paused and user.language == "ko"
    assert await stack.services.storage.key_sets.for_user(user.id) == []
    assert chat.bot_messages() == []  # no code was sent
    assert (await client.call("GET", "/app/api/session")).status == 200  # still signed in


async def test_reads_need_a_session(stack: Stack) -> None:
    client = stack.client()
    who = await client.call("GET", "/app/api/session")
    assert (who.status, who.body) == (200, {"status": "signed_out"})
    for path in ("/app/api/overview", "/app/api/activity"):
        response = await client.call("GET", path)
        assert response.status == 401 and response.body["code"] == "no_session", path
        assert response.headers["Cache-Control"] == "no-store"
    client.cookie = "moahook_session=forged-or-expired"
    assert (await client.call("GET", "/app/api/overview")).status == 401


async def test_page_and_api_carry_a_strict_content_security_policy(stack: Stack) -> None:
    async with stack.http.get(stack.base_url + "/app") as response:
        page = await response.text()
        csp = response.headers["Content-Security-Policy"]
        assert response.status == 200 and response.content_type == "text/html"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in csp and "unsafe" not in csp
    assert "script-src 'self' https://telegram.org/js/telegram-web-app.js" in csp
    assert "frame-ancestors 'self' https://web.telegram.org" in csp
    # No inline script: every <script> has a src, except the JSON data block.
    scripts = page.split("<script")[1:]
    assert scripts and all(
        'src="' in tag.split(">")[0] or 'type="application/json"' in tag.split(">")[0]
        for tag in scripts
    )
    for name, kind in (("app.js", "javascript"), ("app.css", "css"), ("icon.svg", "svg")):
        async with stack.http.get(f"{stack.base_url}/app/static/{name}") as asset:
            assert asset.status == 200 and kind in asset.content_type, name
            assert "Content-Security-Policy" in asset.headers
    for missing in ("/app/static/nope.js", "/app/static/..%2F__init__.py", "/app/static/x.py"):
        async with stack.http.get(stack.base_url + missing) as gone:
            assert gone.status == 404, missing
    api = await stack.client().call("GET", "/app/api/overview")
    assert "default-src 'none'" in api.headers["Content-Security-Policy"]


# --- keys, the checklist, and no secret anywhere -------------------------------------------


async def test_key_registration_with_the_chat_code_never_shows_or_sends_the_secret(
    stack: Stack,
) -> None:
    client = stack.client()
    await client.sign_in(stack.bot_token, ALICE)
    chat = stack.user(ALICE)

    mark = chat.mark()
    asked = await client.call("POST", "/app/api/keys", keys_body())
    assert asked.status == 202
    code = await stack.code_for(chat, mark)
    wrong = "000000" if code != "000000" else "111111"
    refused = await client.call("POST", "/app/api/keys", {**keys_body(), "code": wrong})
    assert (refused.status, refused.body["code"], refused.body["tries_left"]) == (
        401, "wrong_code", 4
    )
    saved = await client.call("POST", "/app/api/keys", {**keys_body(), "code": code})
    assert saved.status == 202
    await stack.checks_idle()

    overview = await client.call("GET", "/app/api/overview")
    paper = overview.body["keys"]["paper"]  # type: ignore[index]
    assert paper["validated"] is True and paper["app_key"] == "****" + DEMO_APP_KEY[-4:]
    assert [i["status"] for i in paper["checks"]["items"]] == ["ok", "ok", "ok"]
    assert overview.body["fill"] == {"status": "ready", "reason": ""}
    # The code was single-use.
    again = await client.call("POST", "/app/api/keys", {**keys_body(), "code": code})
    assert again.status == 401 and again.body["code"] == "code_void"

    # The App Secret never left for Telegram, never came back, and no code sits in the
    # outbox (its rows are stored in clear).
    assert DEMO_APP_SECRET not in stack.every_bot_api_request()
    assert DEMO_APP_SECRET not in stack.every_response_text()
    assert DEMO_APP_SECRET[-8:] not in stack.every_response_text()
    assert DEMO_APP_KEY not in stack.every_response_text()
    async with stack.services.storage.db.session() as session:
        outbox = (await session.execute(text("SELECT payload FROM outbox"))).scalars().all()
    assert code not in str(outbox) and DEMO_APP_SECRET not in str(outbox)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("env", "live"), ("app_key", "short"), ("app_secret", "has spaces " * 5),
        ("account", "1234"), ("hts_id", "bad id!"), ("app_key", ""),
    ],
)
async def test_bad_key_fields_are_refused_naming_the_field(
    stack: Stack, field: str, value: str
) -> None:
    client = stack.client()
    await client.sign_in(stack.bot_token, ALICE)
    response = await client.call("POST", "/app/api/keys", keys_body(**{field: value}))
    assert response.status == 400 and response.body["field"] == field, response.text
    assert DEMO_APP_SECRET not in response.text


async def test_an_alert_shows_up_in_activity_with_its_fills(stack: Stack) -> None:
    client = stack.client()
    await client.sign_in(stack.bot_token, ALICE)
    await register_keys(stack, client, ALICE)
    url = (await client.call("GET", "/app/api/overview")).body["webhook"]["url"]  # type: ignore[index]
    hook = str(url).replace(stack.public_url, stack.base_url)
    body = '{"ticker":"KRX:005930","action":"buy","quantity":"2","id":"dash-1"}'
    async with stack.http.post(hook, data=body.encode()) as answer:
        assert answer.status == 200
    refused = '{"ticker":"035720","action":"sell","quantity":"1","id":"dash-2"}'
    async with stack.http.post(hook, data=refused.encode()) as answer:
        assert answer.status == 200

    # The chat notices come after the fill and the refusal are stored.
    chat = stack.user(ALICE)
    await chat.wait_for_bot_message("✅ 체결 (", WAIT_S)
    await chat.wait_for_bot_message("🚫 주문 거절", WAIT_S)
    activity = (await client.call("GET", "/app/api/activity")).body
    order = activity["orders"][0]  # type: ignore[index]
    assert (order["symbol"], order["side"], order["quantity"], order["filled_qty"]) == (
        "005930", "buy", 2, 2
    )
    assert sum(f["quantity"] for f in order["fills"]) == 2
    alert = activity["alerts"][0]  # type: ignore[index]
    assert "035720" in alert["summary"] and alert["reason"]


async def test_with_several_accounts_the_page_names_each_orders_and_alerts_account(
    stack: Stack,
) -> None:
    client = stack.client()
    await client.sign_in(stack.bot_token, ALICE)
    await register_keys(stack, client, ALICE)
    storage = stack.services.storage
    user = await storage.users.by_telegram_id(ALICE)
    assert user is not None
    await storage.accounts.create(user.id, "isa")  # no keys: its alerts are refused
    overview = (await client.call("GET", "/app/api/overview")).body
    assert overview["account"] == "main"
    assert [(a["name"], a["default"]) for a in overview["accounts"]] == [  # type: ignore[union-attr]
        ("main", True), ("isa", False)
    ]
    hook = str(overview["webhook"]["url"]).replace(stack.public_url, stack.base_url)  # type: ignore[index]
    body = '{"ticker":"005930","action":"buy","quantity":"1","account":"all","id":"both"}'
    async with stack.http.post(hook, data=body.encode()) as answer:
        assert answer.status == 200
    chat = stack.user(ALICE)
    await chat.wait_for_bot_message("🚫 주문 거절 (모의투자 · isa)", WAIT_S)
    await chat.wait_for_bot_message("✅ 체결 (모의투자 · main)", WAIT_S)
    activity = (await client.call("GET", "/app/api/activity")).body
    assert [o["account"] for o in activity["orders"]] == ["main"]  # type: ignore[index]
    assert {a["account"]: a["status"] for a in activity["alerts"]} == {  # type: ignore[union-attr]
        "main": "done", "isa": "refused"
    }


async def test_a_user_never_sees_another_users_data(stack: Stack) -> None:
    alice, bob = stack.client(), stack.client()
    await alice.sign_in(stack.bot_token, ALICE)
    await bob.sign_in(stack.bot_token, BOB, username="bob")
    await register_keys(stack, alice, ALICE)
    alice_view = await alice.call("GET", "/app/api/overview")
    bob_view = await bob.call("GET", "/app/api/overview")
    assert bob_view.body["keys"] == {"paper": None, "real": None}
    assert bob_view.body["webhook"]["url"] != alice_view.body["webhook"]["url"]  # type: ignore[index]
    assert str(alice_view.body["webhook"]["url"]) not in bob_view.text  # type: ignore[index]
    assert (await bob.call("GET", "/app/api/activity")).body == {"orders": [], "alerts": []}
    # Bob's cookie with Alice's CSRF token changes nothing of anyone's.
    bob.csrf = alice.csrf
    crossed = await bob.call("POST", "/app/api/pause", {"paused": True})
    assert crossed.status == 403
    users = stack.services.storage.users
    assert not (await users.by_telegram_id(ALICE)).paused  # type: ignore[union-attr]


# --- browser sign-in with a code ----------------------------------------------------------


async def test_browser_sign_in_with_a_code_sent_to_the_chat(stack: Stack) -> None:
    chat = stack.user(ALICE, username="Alice_Trades")
    mark = chat.mark()
    await chat.send_text("/start")
    await chat.wait_for_bot_message("moahook", WAIT_S, after=mark)
    client = stack.client()

    unknown = await client.call("POST", "/app/api/signin/code", {"user": "@nobody_here"})
    mark = chat.mark()
    known = await client.call("POST", "/app/api/signin/code", {"user": "@alice_trades"})
    assert (unknown.status, unknown.body) == (known.status, known.body) == (
        202, {"status": "sent_if_known"}
    )
    code = await stack.code_for(chat, mark)
    assert "대시보드 로그인" in chat.bot_messages()[-1].text

    nobody = await client.call("POST", "/app/api/signin", {"user": "nobody_here", "code": code})
    wrong = await client.call(
        "POST", "/app/api/signin", {"user": "alice_trades", "code": "000000" if code != "000000"
                                    else "111111"}
    )
    assert nobody.status == wrong.status == 401 and nobody.body == wrong.body
    assert nobody.set_cookie == wrong.set_cookie == []
    opened = await client.call("POST", "/app/api/signin", {"user": "Alice_Trades", "code": code})
    assert opened.status == 200 and opened.set_cookie
    assert (await client.call("GET", "/app/api/overview")).status == 200

    # By numeric id as well.
    other = stack.client()
    mark = chat.mark()
    await other.call("POST", "/app/api/signin/code", {"user": str(ALICE)})
    code = await stack.code_for(chat, mark)
    assert (await other.call("POST", "/app/api/signin", {"user": str(ALICE), "code": code})
            ).status == 200


async def test_sign_in_is_rate_limited_per_user_and_per_ip(stack: Stack) -> None:
    chat = stack.user(ALICE, username="alice_trades")
    mark = chat.mark()
    await chat.send_text("/start")
    await chat.wait_for_bot_message("moahook", WAIT_S, after=mark)
    client = stack.client()
    mark = chat.mark()
    answers = [
        await client.call("POST", "/app/api/signin/code", {"user": "alice_trades"})
        for _ in range(11)
    ]
    assert [a.status for a in answers] == [202] * 10 + [429]
    assert answers[-1].body["code"] == "rate_limited"
    assert 0 < int(answers[-1].headers["Retry-After"]) <= 600
    sent = [m for m in chat.bot_messages() if "대시보드 인증 코드" in m.text]
    assert len(sent) == 10
    # Codes for changes count against the same user's limit: no more messages.
    await client.sign_in(stack.bot_token, ALICE)
    rotate = await client.call("POST", "/app/api/webhook/rotate", {})
    assert rotate.status == 429 and rotate.body["code"] == "rate_limited"
    assert len([m for m in chat.bot_messages() if "인증 코드" in m.text]) == 10

    # Per IP: refused initData from this address counts, whoever it names…
    statuses = [
        (await client.call(
            "POST", "/app/api/session", {"init_data": f"auth_date={n}&hash=00"}
        )).status
        for n in range(31)
    ]
    assert statuses == [401] * 30 + [429]
    # …while initData Telegram signed still opens a session (users share carrier NATs),
    # counted per user instead.
    valid = make_init_data(stack.bot_token, tg_user(BOB))
    opened = [
        (await client.call("POST", "/app/api/session", {"init_data": valid})).status
        for _ in range(61)
    ]
    assert opened == [200] * 60 + [429]


# --- the other changes ------------------------------------------------------------------------


async def test_pause_resume_language_and_sign_out(stack: Stack) -> None:
    client = stack.client()
    await client.sign_in(stack.bot_token, ALICE)
    paused = await client.call("POST", "/app/api/pause", {"paused": True})
    assert paused.status == 200
    users = stack.services.storage.users
    assert (await users.by_telegram_id(ALICE)).paused  # type: ignore[union-attr]
    assert (await client.call("POST", "/app/api/pause", {"paused": "no"})).status == 400
    await client.call("POST", "/app/api/pause", {"paused": False})
    assert not (await users.by_telegram_id(ALICE)).paused  # type: ignore[union-attr]
    assert (await client.call("POST", "/app/api/lang", {"lang": "en"})).status == 200
    assert (await users.by_telegram_id(ALICE)).language == "en"  # type: ignore[union-attr]
    assert (await client.call("POST", "/app/api/lang", {"lang": "de"})).status == 400

    out = await client.call("DELETE", "/app/api/session")
    assert out.status == 200 and out.set_cookie and "Max-Age=0" in out.set_cookie[0]
    assert (await client.call("GET", "/app/api/overview")).status == 401


async def test_real_mode_needs_validated_real_keys_then_a_code(stack: Stack) -> None:
    client = stack.client()
    await client.sign_in(stack.bot_token, ALICE)
    refused = await client.call("POST", "/app/api/mode", {"env": "real"})
    assert refused.status == 409 and refused.body["code"] == "real_needs_keys"
    chat = stack.user(ALICE)
    from kis.sim import demo_real_account

    real = demo_real_account()
    mark = chat.mark()
    body = keys_body(env="real", app_key=real.app_key, app_secret=real.app_secret,
                     account=real.account_number, hts_id=real.hts_id)
    assert (await client.call("POST", "/app/api/keys", body)).status == 202
    code = await stack.code_for(chat, mark)
    assert (await client.call("POST", "/app/api/keys", {**body, "code": code})).status == 202
    await stack.checks_idle()

    mark = chat.mark()
    asked = await client.call("POST", "/app/api/mode", {"env": "real"})
    assert asked.status == 202 and asked.body == {"status": "code_sent"}
    code = await stack.code_for(chat, mark)
    assert "실전투자 전환" in chat.bot_messages()[-1].text
    switched = await client.call("POST", "/app/api/mode", {"env": "real", "code": code})
    assert switched.status == 200
    overview = await client.call("GET", "/app/api/overview")
    assert overview.body["user"]["env"] == "real"  # type: ignore[index]
    back = await client.call("POST", "/app/api/mode", {"env": "paper"})  # no code for paper
    assert back.status == 200


async def test_webhook_rotation_needs_a_code_and_retires_the_old_url(stack: Stack) -> None:
    client = stack.client()
    await client.sign_in(stack.bot_token, ALICE)
    chat = stack.user(ALICE)
    old = str((await client.call("GET", "/app/api/overview")).body["webhook"]["url"])  # type: ignore[index]
    mark = chat.mark()
    assert (await client.call("POST", "/app/api/webhook/rotate", {})).status == 202
    code = await stack.code_for(chat, mark)
    assert (await client.call("POST", "/app/api/webhook/rotate", {"code": code})).status == 200
    new = str((await client.call("GET", "/app/api/overview")).body["webhook"]["url"])  # type: ignore[index]
    assert new != old
    body = b'{"ticker":"005930","action":"buy","quantity":"1"}'
    async with stack.http.post(old.replace(stack.public_url, stack.base_url), data=body) as r:
        assert r.status == 404
    async with stack.http.post(new.replace(stack.public_url, stack.base_url), data=body) as r:
        assert r.status == 200


async def test_chat_delete_ends_dashboard_sessions(stack: Stack) -> None:
    client = stack.client()
    await client.sign_in(stack.bot_token, ALICE)
    await register_keys(stack, client, ALICE)
    chat = stack.user(ALICE)
    mark = chat.mark()
    await chat.send_text("/delete")
    code = await stack.code_for(chat, mark, expect="인증 코드")
    mark = chat.mark()
    await chat.send_text(code)
    await chat.wait_for_bot_message("모든 키와 토큰을 지웠", WAIT_S, after=mark)
    assert (await client.call("GET", "/app/api/overview")).status == 401


async def test_recheck_runs_on_the_stored_keys_once_a_minute_and_keeps_the_live_connection(
    stack: Stack,
) -> None:
    client = stack.client()
    await client.sign_in(stack.bot_token, ALICE)
    none_yet = await client.call("POST", "/app/api/keys/recheck", {"env": "paper"})
    assert none_yet.status == 409 and none_yet.body["code"] == "no_keys"
    await register_keys(stack, client, ALICE)
    user = await stack.services.storage.users.by_telegram_id(ALICE)
    assert user is not None
    main = await stack.services.storage.accounts.default(user.id)
    assert main is not None
    live = stack.services.watchers.connection_state(main.id)
    assert live is not None and live.ready

    again = await client.call("POST", "/app/api/keys/recheck", {"env": "paper"})
    assert again.status == 202
    await stack.checks_idle()
    overview = await client.call("GET", "/app/api/overview")
    paper = overview.body["keys"]["paper"]  # type: ignore[index]
    assert paper["validated"] and [i["status"] for i in paper["checks"]["items"]] == ["ok"] * 3
    # The READY connection was the fill check's answer: it was not restarted.
    assert stack.services.watchers.connection_state(main.id) == live
    paced = await client.call("POST", "/app/api/keys/recheck", {"env": "paper"})
    assert paced.status == 429 and paced.body["code"] == "rate_limited"
