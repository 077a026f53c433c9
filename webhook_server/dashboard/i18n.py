"""The dashboard's own text catalogue, Korean (default) and English.

The page is rendered with one language and carries both catalogues, so the language
switch and the signed-in user's stored language apply without a reload. Both catalogues
have the same keys (a test checks it). `{name}` placeholders are filled by the page.
"""

from __future__ import annotations

from typing import Final, Literal

Lang = Literal["ko", "en"]
LANGS: Final[tuple[Lang, ...]] = ("ko", "en")
DEFAULT_LANG: Final[Lang] = "ko"

KO: Final[dict[str, str]] = {
    "title": "moahook 대시보드",
    "lang.switch": "English",
    "signin.title": "로그인",
    "signin.telegram": "텔레그램으로 로그인하는 중…",
    "signin.browser_help": (
        "텔레그램 사용자명(@없이) 또는 숫자 ID를 입력하세요. moahook 봇이 그 채팅으로 "
        "로그인 코드를 보냅니다. 봇과 대화한 적이 있어야 합니다."
    ),
    "signin.user": "텔레그램 사용자명 또는 ID",
    "signin.send": "코드 보내기",
    "signin.sent": (
        "moahook을 쓰는 계정이라면 봇이 텔레그램 채팅으로 6자리 코드를 보냈습니다 "
        "(5분 유효)."
    ),
    "signin.code": "6자리 코드",
    "signin.submit": "로그인",
    "signin.failed": "텔레그램 로그인 실패: {reason}",
    "signout": "로그아웃",
    "status.title": "상태",
    "status.env": "환경",
    "status.paused": "알림 처리",
    "status.paused_yes": "중지됨 (알림은 기록만 됩니다)",
    "status.paused_no": "동작 중",
    "status.fill": "체결통보 연결",
    "fill.ready": "연결됨",
    "fill.connecting": "연결 중",
    "fill.failed": "끊김: {reason}",
    "fill.stopped": "없음 (점검을 통과한 키가 필요합니다)",
    "action.pause": "일시 중지",
    "action.resume": "재개",
    "action.switch_paper": "모의투자로 전환",
    "action.switch_real": "실전투자로 전환",
    "env.paper": "모의투자 (Paper)",
    "env.real": "실전투자 (Real)",
    "keys.title": "KIS 키",
    "keys.none": "등록된 키가 없습니다.",
    "keys.stored": "App Key {app_key} · 계좌 {account} · HTS ID {hts_id}",
    "keys.validated": "점검 통과",
    "keys.not_validated": "점검 미통과: 이 환경의 주문은 막혀 있습니다",
    "keys.form_title": "키 등록·교체",
    "keys.form_help": (
        "비밀값은 moahook 서버로만 전송되고 텔레그램을 거치지 않습니다. "
        "저장 전에 봇이 보내는 6자리 코드로 확인합니다."
    ),
    "keys.env": "환경",
    "keys.app_key": "App Key",
    "keys.app_secret": "App Secret",
    "keys.account": "계좌번호 (12345678-01)",
    "keys.hts_id": "HTS ID (한국투자증권 로그인 ID)",
    "keys.send_code": "확인 코드 받기",
    "keys.save": "저장하고 점검",
    "keys.recheck": "다시 점검",
    "keys.saved": "키를 암호화해 저장했습니다. KIS로 점검합니다…",
    "check.title": "KIS 점검 ({env})",
    "check.token": "환경/토큰",
    "check.account": "계좌",
    "check.fill": "체결통보 (HTS ID)",
    "check.pending": "확인 중…",
    "check.interrupted": "점검이 끝나지 않았습니다. 다시 점검하세요.",
    "check.ok": "통과",
    "check.other_env": "이 키는 {other} 키입니다. {other}를 골라 다시 등록하세요.",
    "check.invalid": (
        "KIS가 App Key/App Secret을 거부했습니다. KIS Developers에서 그대로 복사해 "
        "다시 등록하고, 앱의 환경을 확인하세요."
    ),
    "check.rate_limited": "KIS는 토큰 발급을 1분에 한 번만 허용합니다. 1분 뒤 다시 점검하세요.",
    "check.temporary": "KIS에 일시적으로 연결하지 못했습니다. 잠시 뒤 다시 점검하세요.",
    "check.refused_account": (
        "KIS가 계좌 조회를 거부했습니다. 이 앱의 계좌번호 8자리와 상품코드(보통 01)를 "
        "확인해 다시 등록하세요."
    ),
    "check.refused_fill": (
        "KIS가 HTS ID를 거부했습니다. HTS ID는 로그인 ID입니다 (계좌번호 아님). "
        "다시 등록하세요."
    ),
    "check.timeout": (
        "KIS가 체결통보 구독을 확인하지 않았습니다. "
        "HTS ID를 확인하거나 다시 점검하세요."
    ),
    "check.approval_failed": "웹소켓 접속키 발급이 실패했습니다. 잠시 뒤 다시 점검하세요.",
    "check.skipped": "토큰이 없어 확인하지 못했습니다. 위 항목을 먼저 고치세요.",
    "check.all_ok": "모두 통과했습니다.",
    "check.some_failed": "✗ 항목을 고치기 전까지 이 환경의 주문은 막혀 있습니다.",
    "webhook.title": "웹훅",
    "webhook.url": "웹훅 주소 (TradingView 알림 → Notifications → Webhook URL)",
    "webhook.secret_note": "이 주소는 비밀번호처럼 다루세요. 유출되면 새 주소를 발급하세요.",
    "webhook.templates": "알림 메시지 (Message 칸에 그대로 붙여 넣기)",
    "webhook.template.strategy": "전략 알림",
    "webhook.template.indicator": "지표 알림",
    "webhook.rotate": "새 주소 발급",
    "webhook.rotated": "새 주소를 발급했습니다. 예전 주소는 더 이상 동작하지 않습니다.",
    "copy": "복사",
    "copied": "복사했습니다",
    "code.label": "봇이 보낸 6자리 코드",
    "code.sent": "텔레그램 채팅으로 6자리 코드를 보냈습니다 (5분 유효).",
    "code.confirm": "확인",
    "code.cancel": "취소",
    "orders.title": "주문",
    "orders.empty": "아직 주문이 없습니다.",
    "orders.qty": "{quantity}주",
    "orders.fills": "체결 {filled}/{quantity}주, 평균 {price}",
    "log.title": "알림 기록",
    "log.empty": "아직 받은 알림이 없습니다.",
    "side.buy": "매수",
    "side.sell": "매도",
    "order_status.pending": "대기",
    "order_status.sent": "전송됨",
    "order_status.unknown": "확인 중",
    "order_status.accepted": "접수",
    "order_status.partially_filled": "일부 체결",
    "order_status.filled": "체결",
    "order_status.rejected": "거부",
    "order_status.failed": "실패",
    "alert_status.accepted": "접수",
    "alert_status.processing": "처리 중",
    "alert_status.done": "주문함",
    "alert_status.refused": "거절",
    "alert_status.failed": "실패",
    "alert_status.duplicate": "중복 (무시)",
    "alert_status.awaiting": "확인 대기",
    "alert_status.fanned_out": "계좌별로 나눔",
    "live": "실시간 갱신 중",
    "error.generic": "문제가 생겼습니다: {reason}",
    "error.session": "로그인이 만료되었습니다. 다시 로그인하세요.",
    "error.wrong_code": "코드가 맞지 않습니다. 남은 시도: {left}회.",
    "error.code_expired": "코드가 만료되었습니다. 새 코드를 받으세요.",
    "error.code_void": "이 코드는 무효입니다. 새 코드를 받으세요.",
    "error.rate_limited": "시도가 너무 많습니다. {seconds}초 뒤 다시 하세요.",
    "error.delivery": (
        "텔레그램 채팅으로 코드를 보내지 못했습니다. "
        "봇을 차단하지 않았는지 확인하세요."
    ),
    "error.real_needs_keys": "실전투자로 바꾸려면 점검을 통과한 실전투자 키가 필요합니다.",
    "error.busy": "점검이 이미 진행 중입니다.",
    "error.network": "서버에 연결하지 못했습니다. 다시 시도합니다…",
}

EN: Final[dict[str, str]] = {
    "title": "moahook dashboard",
    "lang.switch": "한국어",
    "signin.title": "Sign in",
    "signin.telegram": "Signing in with Telegram…",
    "signin.browser_help": (
        "Enter your Telegram username (without @) or numeric id. The moahook bot sends a "
        "sign-in code to that chat; you must have talked to the bot before."
    ),
    "signin.user": "Telegram username or id",
    "signin.send": "Send code",
    "signin.sent": (
        "If this account uses moahook, the bot has sent a 6-digit code to its Telegram "
        "chat (valid 5 minutes)."
    ),
    "signin.code": "6-digit code",
    "signin.submit": "Sign in",
    "signin.failed": "Telegram sign-in failed: {reason}",
    "signout": "Sign out",
    "status.title": "Status",
    "status.env": "Environment",
    "status.paused": "Acting on alerts",
    "status.paused_yes": "paused (alerts are only recorded)",
    "status.paused_no": "running",
    "status.fill": "Fill-notice connection",
    "fill.ready": "connected",
    "fill.connecting": "connecting",
    "fill.failed": "down: {reason}",
    "fill.stopped": "none (needs keys that passed the checks)",
    "action.pause": "Pause",
    "action.resume": "Resume",
    "action.switch_paper": "Switch to paper",
    "action.switch_real": "Switch to real",
    "env.paper": "모의투자 (Paper)",
    "env.real": "실전투자 (Real)",
    "keys.title": "KIS keys",
    "keys.none": "No keys registered.",
    "keys.stored": "App Key {app_key} · account {account} · HTS ID {hts_id}",
    "keys.validated": "checks passed",
    "keys.not_validated": "checks not passed: orders in this environment are blocked",
    "keys.form_title": "Register or replace keys",
    "keys.form_help": (
        "Secrets go to the moahook server only, never through Telegram. Saving is "
        "confirmed with a 6-digit code the bot sends you."
    ),
    "keys.env": "Environment",
    "keys.app_key": "App Key",
    "keys.app_secret": "App Secret",
    "keys.account": "Account number (12345678-01)",
    "keys.hts_id": "HTS ID (your KIS login id)",
    "keys.send_code": "Get a confirmation code",
    "keys.save": "Save and check",
    "keys.recheck": "Re-check",
    "keys.saved": "Keys saved encrypted. Checking them with KIS…",
    "check.title": "KIS checks ({env})",
    "check.token": "Environment/token",
    "check.account": "Account",
    "check.fill": "Fill notice (HTS ID)",
    "check.pending": "checking…",
    "check.interrupted": "The check did not finish. Run it again.",
    "check.ok": "passed",
    "check.other_env": "These are {other} keys. Register them again choosing {other}.",
    "check.invalid": (
        "KIS refused the App Key/App Secret. Copy them exactly from KIS Developers, "
        "register again, and check the app's environment."
    ),
    "check.rate_limited": "KIS issues a token once a minute only. Re-check in a minute.",
    "check.temporary": "KIS could not be reached just now. Re-check in a moment.",
    "check.refused_account": (
        "KIS refused the account inquiry. Check the app's 8-digit account number and "
        "product code (usually 01) and register again."
    ),
    "check.refused_fill": (
        "KIS refused the HTS ID. The HTS ID is your KIS login id (not the account "
        "number). Register again."
    ),
    "check.timeout": (
        "KIS did not confirm the fill-notice subscription. Check the HTS ID or "
        "re-check."
    ),
    "check.approval_failed": "The WebSocket approval key was not issued. Re-check in a moment.",
    "check.skipped": "Not checked without a token. Fix the item above first.",
    "check.all_ok": "All passed.",
    "check.some_failed": "Orders in this environment are blocked until every ✗ is fixed.",
    "webhook.title": "Webhook",
    "webhook.url": "Webhook URL (TradingView alert → Notifications → Webhook URL)",
    "webhook.secret_note": "Treat this URL like a password. If it leaks, issue a new one.",
    "webhook.templates": "Alert messages (paste into the Message box as they are)",
    "webhook.template.strategy": "Strategy alert",
    "webhook.template.indicator": "Indicator alert",
    "webhook.rotate": "Issue a new URL",
    "webhook.rotated": "New URL issued. The old one no longer works.",
    "copy": "Copy",
    "copied": "Copied",
    "code.label": "6-digit code from the bot",
    "code.sent": "A 6-digit code was sent to your Telegram chat (valid 5 minutes).",
    "code.confirm": "Confirm",
    "code.cancel": "Cancel",
    "orders.title": "Orders",
    "orders.empty": "No orders yet.",
    "orders.qty": "{quantity} sh",
    "orders.fills": "filled {filled}/{quantity}, average {price}",
    "log.title": "Alert log",
    "log.empty": "No alerts received yet.",
    "side.buy": "buy",
    "side.sell": "sell",
    "order_status.pending": "pending",
    "order_status.sent": "sent",
    "order_status.unknown": "being reconciled",
    "order_status.accepted": "accepted",
    "order_status.partially_filled": "partially filled",
    "order_status.filled": "filled",
    "order_status.rejected": "rejected",
    "order_status.failed": "failed",
    "alert_status.accepted": "accepted",
    "alert_status.processing": "processing",
    "alert_status.done": "ordered",
    "alert_status.refused": "refused",
    "alert_status.failed": "failed",
    "alert_status.duplicate": "duplicate (dropped)",
    "alert_status.awaiting": "awaiting your OK",
    "alert_status.fanned_out": "split by account",
    "live": "updating live",
    "error.generic": "Something went wrong: {reason}",
    "error.session": "Your session has ended. Sign in again.",
    "error.wrong_code": "Wrong code. Tries left: {left}.",
    "error.code_expired": "The code has expired. Get a new one.",
    "error.code_void": "This code is void. Get a new one.",
    "error.rate_limited": "Too many attempts. Try again in {seconds} s.",
    "error.delivery": (
        "The code could not be sent to your Telegram chat. Check that the bot "
        "is not blocked."
    ),
    "error.real_needs_keys": "Switching to real needs real keys that passed the checks.",
    "error.busy": "A check is already running.",
    "error.network": "The server could not be reached. Retrying…",
}

CATALOGS: Final[dict[Lang, dict[str, str]]] = {"ko": KO, "en": EN}


def parse_lang(value: str | None) -> Lang | None:
    """`ko`/`en` from a stored language, a Telegram language code or `en-US`."""
    if not value:
        return None
    head = value.strip().lower()[:2]
    if head == "ko":
        return "ko"
    if head == "en":
        return "en"
    return None


def lang_from_accept(header: str | None) -> Lang:
    """The first of ko/en named in an Accept-Language header, Korean otherwise."""
    for part in (header or "").split(","):
        lang = parse_lang(part.split(";")[0])
        if lang is not None:
            return lang
    return DEFAULT_LANG


def text(lang: Lang, key: str) -> str:
    return CATALOGS[lang][key]
