"""`moahook demo`: the whole tour in process (and once as the console script), its
output, and that a fault anywhere stops it with a non-zero exit naming the step."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bot.standin import BotApiStandIn, ChatMessage
from kis.sim import DEMO_APP_KEY, DEMO_APP_SECRET, KisSimulator
from moahook.demo import DemoOptions, run_demo
from moahook.demo_report import OrderRow, display_width, render_chat, render_orders
from moahook.demo_tour import STEP_TITLES

STEPS = len(STEP_TITLES)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary directories land here (to see that the demo removes its own), and the
    working directory holds a `.env` with unusable values the demo must not read."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    work = tmp_path / "work"
    work.mkdir()
    (work / ".env").write_text("MOAHOOK_DATABASE_URL=mysql://nope\nMOAHOOK_PORT=99999\n")
    monkeypatch.chdir(work)
    monkeypatch.setenv("MOAHOOK_MARKET_HOURS", "krx")
    monkeypatch.setenv("MOAHOOK_BOT_TOKEN", "not-a-token")
    monkeypatch.setenv("MOAHOOK_KIS_PAPER_URL", "https://openapivts.koreainvestment.com:29443")
    return temp


def demo(options: DemoOptions | None = None) -> tuple[int, str]:
    out = io.StringIO()
    status = run_demo(out, options)
    return status, out.getvalue()


def test_demo_walks_the_whole_tour_and_prints_the_story(scratch: Path) -> None:
    root = logging.getLogger()
    handlers_before, level_before = list(root.handlers), root.level

    status, output = demo()

    assert status == 0, output
    # Every step announced, each with a tick and its time, in order.
    for number, title in enumerate(STEP_TITLES, start=1):
        assert re.search(
            rf"^\[{number}/{STEPS}\] {re.escape(title)} … ✓ \d+\.\d\ds$", output, re.M
        ), title
    assert "MOAHOOK_MARKET_HOURS=off" in output  # says why it works at any hour
    # The key flow as the user saw it, in Korean, secrets' messages deleted.
    chat = output.split("── 채팅", 1)[1].split("── TradingView", 1)[0]
    assert "👤 user: /start" in chat and "안녕하세요, moahook입니다." in chat
    assert re.search(r"http://127\.0\.0\.1:\d+/hook/[A-Za-z0-9_-]{22,}", chat)
    assert chat.count("👤 user: (deleted by the bot)") == 2
    # The environment buttons as they were, then the press, then the bot's edit.
    buttons = chat.index("        [ 모의투자 (Paper) ] [ 실전투자 (Real) ]")
    pressed = chat.index("👤 user: (pressed) [ 모의투자 (Paper) ]")
    assert buttons < pressed < chat.index("🤖 bot: 환경: 모의투자 (edited)")
    assert re.search(r"moahook 인증 코드: \d{6}", chat)
    assert "✅ 환경/토큰" in chat and "✅ 계좌" in chat and "✅ 체결통보" in chat
    # The four outcomes: three orders accepted and filled (one US), one refused.
    assert "삼성전자 (005930) 매수 3주 @ 71,000원" in chat
    assert "SK하이닉스 (000660) 매수 2주 @ 185,000원" in chat
    assert "APPLE INC (NASDAQ:AAPL) 매수 2주 @ $190.12" in chat
    assert "NASDAQ:AAPL 매수 2주 시장가 (미국: 지정가 $191.07로 주문" in chat
    assert chat.count("📨 주문 접수") == 3 and chat.count("✅ 체결 (") == 3
    # Each order's acceptance reaches the chat before its fill.
    blocks = chat.split("🤖 bot: ")
    for code in ("005930", "000660", "NASDAQ:AAPL"):
        about = [b for b in blocks if f"({code})" in b or f"\n        {code} " in b]
        kinds = [b.split("\n", 1)[0] for b in about]
        kinds = [k for k in kinds if k.startswith(("📨", "✅ 체결 ("))]
        assert [k[:1] for k in kinds] == ["📨", "✅"], (code, kinds)
    assert "🚫 주문 거절" in chat and "사유: 보유하지 않은 종목은 매도할 수 없습니다" in chat
    assert "체결 3/3주" in chat and "체결 2/2주" in chat  # /orders
    # The alerts' HTTP answers, the orders and the fills.
    assert output.count('→ 200 {"status":"accepted","alert_id":') == 4
    orders = output.split("── Orders", 1)[1].split("── Fills", 1)[0]
    assert re.search(r"005930\s+삼성전자\s+buy\s+3\s+market\s+71,000\s+filled\s+filled\s+\d{10}",
                     orders)
    assert re.search(r"000660\s+SK하이닉스\s+buy\s+2\s+market\s+185,000\s+filled\s+filled", orders)
    assert re.search(r"AAPL\s+APPLE INC\s+buy\s+2\s+market\s+\$190\.12\s+filled\s+filled", orders)
    fills = output.split("── Fills", 1)[1]
    assert re.search(r"^\d{10}\s+005930\s+3\s+71,000\s+\d\d:\d\d:\d\d KST$", fills, re.M)
    assert re.search(r"^\d{10}\s+000660\s+2\s+185,000\s+", fills, re.M)
    # Secrets: the App Secret never appears; the App Key only masked.
    assert DEMO_APP_SECRET not in output and DEMO_APP_SECRET[-12:] not in output
    assert DEMO_APP_KEY not in output
    final = output.rstrip().splitlines()[-1]
    timing = re.fullmatch(rf"demo: OK \(all {STEPS} steps\) in (\d+\.\d)s", final)
    assert timing is not None, final
    assert float(timing.group(1)) < 30
    # Clean up: its temporary directory is gone, the logging set-up is restored.
    assert list(scratch.iterdir()) == []
    assert root.handlers == handlers_before and root.level == level_before


def test_kis_refusing_the_order_fails_the_quantity_alert_step(scratch: Path) -> None:
    def refuse_first_order(sim: KisSimulator, _standin: BotApiStandIn) -> None:
        sim.faults.add("order", "APBK0952")

    status, output = demo(DemoOptions(wait_s=3.0, prepare=refuse_first_order))

    assert status != 0
    step = STEP_TITLES.index(next(t for t in STEP_TITLES if "quantity mode" in t)) + 1
    assert re.search(rf"^\[{step}/{STEPS}\] .* ✗ \d+\.\d\ds$", output, re.M)
    assert f"[{step + 1}/{STEPS}]" not in output  # it stopped there
    final = output.rstrip().splitlines()[-1]
    assert final.startswith(f"demo: FAILED at step {step}: expected ✅ 체결")
    assert "APBK0952" in final and "KIS 거부" in final
    assert "── 채팅" in output  # the chat so far is still shown
    assert list(scratch.iterdir()) == []


def test_a_secret_message_left_undeleted_fails_the_app_key_step(scratch: Path) -> None:
    def keep_messages(_sim: KisSimulator, standin: BotApiStandIn) -> None:
        standin.fail_next("deleteMessage", count=5, error_code=400,
                          description="Bad Request: message can't be deleted")

    status, output = demo(DemoOptions(wait_s=1.0, prepare=keep_messages))

    assert status != 0
    final = output.rstrip().splitlines()[-1]
    assert final.startswith("demo: FAILED at step 3: timed out: waited 1.0s for message")
    assert "to be deleted" in final
    assert DEMO_APP_KEY not in final
    assert list(scratch.iterdir()) == []


def test_console_script_exits_zero_with_nothing_on_stderr(tmp_path: Path) -> None:
    """`moahook demo` as `make demo` runs it, warnings as errors: no warning, traceback or
    log line at exit, and the exit status is the demo's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOAHOOK_")}
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "moahook.cli", "demo"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env=env, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert result.stdout.rstrip().splitlines()[-1].startswith(f"demo: OK (all {STEPS} steps)")
    assert list(tmp_path.iterdir()) == []


def test_tables_align_korean_names_by_display_width() -> None:
    assert display_width("삼성전자") == 8 and display_width("005930") == 6
    rows = [
        OrderRow("005930", "삼성전자", "buy", 3, "market", "71,000", "filled", "filled", "1"),
        OrderRow("000660", "SK하이닉스", "buy", 2, "market", "185,000", "filled", "filled", "2"),
    ]
    lines = render_orders(rows).splitlines()
    # The columns after the name start at the same terminal column on every line.
    starts = {display_width(line.split(" buy ")[0]) for line in lines[2:]}
    assert len(starts) == 1


def test_chat_shows_an_edited_keyboard_message_as_it_was_then_edited_after_the_press() -> None:
    prompt = ChatMessage(5, "bot", "5/5 pick", buttons=(("Paper", "Real"),))
    timeline = [
        ChatMessage(5, "bot", "env: paper", edited=True),
        ChatMessage(6, "bot", "unrelated"),
        ChatMessage(5, "user", "Paper", kind="press"),
        ChatMessage(7, "bot", "code"),
    ]
    assert render_chat(timeline, {5: prompt}).splitlines() == [
        "🤖 bot: 5/5 pick",
        "        [ Paper ] [ Real ]",
        "🤖 bot: unrelated",
        "👤 user: (pressed) [ Paper ]",
        "🤖 bot: env: paper (edited)",
        "🤖 bot: code",
    ]
