"""Every user-facing sentence, in Korean (default) and English.

Messages are plain text (no parse mode): what is stored here is exactly what the
user reads. Placeholders use `str.format` names; both catalogs carry the same keys
with the same placeholders (a test checks it). Two format specs of our own:
`{what:이/가}` (and 을/를, 은/는, 과/와, 으로/로) appends the particle that fits the
value's final sound, and `{seconds:duration}` shows seconds as days/hours/minutes.
"""

from __future__ import annotations

import string
from typing import Final, Literal

from bot import texts_accounts, texts_portfolio
from bot.korean import PAIRS, duration, with_particle

Lang = Literal["ko", "en"]
LANGS: Final[tuple[Lang, ...]] = ("ko", "en")
DEFAULT_LANG: Final[Lang] = "ko"

# The environment buttons read the same in both languages (SPEC section 5).
BUTTON_PAPER: Final = "모의투자 (Paper)"
BUTTON_REAL: Final = "실전투자 (Real)"

KO: Final[dict[str, str]] = {
    # --- onboarding -------------------------------------------------------------
    "start": (
        "안녕하세요, moahook입니다.\n"
        "TradingView 알림을 한국투자증권(KIS) 국내주식 주문으로 바꾸고, 접수·체결·거부를 "
        "이 채팅으로 바로 알려드립니다.\n\n"
        "시작하는 세 단계:\n"
        "1. KIS Developers(apiportal.koreainvestment.com)에서 앱을 만들고 App Key와 "
        "App Secret을 받으세요 (모의투자 앱부터 권장).\n"
        "2. /keys 로 키를 등록하세요.\n"
        "3. /webhook 의 주소와 메시지를 TradingView 알림에 붙여 넣으세요.\n\n"
        "내 웹훅 주소:\n{url}\n\n"
        "명령어 목록: /help"
    ),
    "help": (
        "명령어\n"
        "/start — 소개와 시작 단계\n"
        "/help — 이 목록\n"
        "/keys [이름] — KIS 키 등록 (2단계 인증). 이름: 계좌 (main, isa…)\n"
        "/accounts — 계좌 목록, 기본 계좌, 이름 바꾸기, 삭제\n"
        "/mode [이름] — 현재 환경 보기·전환, /paper 모의투자, /real 실전투자\n"
        "/webhook — 웹훅 주소와 알림 메시지 (/webhook rotate: 새 주소)\n"
        "/status — 환경, 키 점검 결과 (다시 점검 버튼), 체결통보 연결, 오늘 주문\n"
        "/orders — 최근 주문 10건, 미체결 주문과 예약주문 취소\n"
        "/log — 최근 알림 20건과 처리 결과\n"
        "/test <알림 메시지> — 주문 없이 알림 시험\n"
        "/balance [이름] — 현금, 주문가능 금액, 보유 종목과 손익 (KRX·미국)\n"
        "/pnl [이름] — 오늘 체결과 실현손익\n"
        "/limits — 위험 한도 (1회 주문, 하루 매수, 하루 주문 수)\n"
        "/confirm on [초], /confirm off — 알림마다 ✅/❌ 확인\n"
        "/digest on|off — 장 마감 뒤 하루 요약\n"
        "/close 종목|all — 보유 종목 매도 (확인 버튼)\n"
        "/afterhours reserve|off — 장외 알림을 예약주문으로 (실전투자)\n"
        "/pause, /resume — 알림 처리 중지·재개\n"
        "/delete — 키와 토큰 모두 삭제, KIS 접근토큰 폐기, 웹훅 주소 재발급 (2단계 인증)\n"
        "/app — 웹 대시보드\n"
        "/totp — 인증 앱(OTP) 등록, /totp off 해제\n"
        "/lang ko|en — 언어\n"
        "/cancel — 진행 중인 절차 취소"
    ),
    "commands.start": "소개와 시작 단계",
    "commands.help": "명령어 목록",
    "commands.keys": "KIS 키 등록",
    "commands.mode": "모의투자/실전투자 전환",
    "commands.paper": "모의투자로 전환",
    "commands.real": "실전투자로 전환",
    "commands.webhook": "웹훅 주소와 알림 메시지",
    "commands.status": "상태 보기",
    "commands.orders": "최근 주문",
    "commands.log": "최근 알림",
    "commands.test": "주문 없이 알림 시험",
    "commands.pause": "알림 처리 중지",
    "commands.resume": "알림 처리 재개",
    "commands.delete": "키·토큰 삭제",
    "commands.totp": "인증 앱(OTP) 등록·해제",
    "commands.lang": "언어 (ko/en)",
    "commands.cancel": "진행 중인 절차 취소",
    "unknown": "알 수 없는 입력입니다. 명령어 목록은 /help 를 보세요.",
    "error": "문제가 생겼습니다. 잠시 후 다시 시도해 주세요.",
    # --- key flow -----------------------------------------------------------------
    "keys.ask_app_key": (
        "KIS 키 등록을 시작합니다 (언제든 /cancel).\n"
        "1/5 App Key를 보내 주세요. 받은 메시지는 바로 지웁니다."
    ),
    "keys.ask_app_secret": "2/5 App Secret을 보내 주세요. 받은 메시지는 바로 지웁니다.",
    "keys.ask_account": (
        "3/5 계좌번호를 보내 주세요: 12345678 또는 12345678-01 "
        "(대시 뒤 두 자리는 상품코드, 없으면 01)."
    ),
    "keys.ask_hts_id": (
        "4/5 HTS ID를 보내 주세요. 한국투자증권 로그인 ID입니다 (계좌번호 아님). "
        "체결통보 구독에 쓰입니다."
    ),
    "keys.ask_env": "5/5 이 키의 환경을 고르세요. 모의투자 앱의 키라면 모의투자입니다.",
    "keys.bad_app_key": (
        "App Key 형식이 아닙니다 (공백 없는 16자 이상). 다시 보내 주세요."
    ),
    "keys.bad_app_secret": (
        "App Secret 형식이 아닙니다 (공백 없는 32자 이상). 다시 보내 주세요."
    ),
    "keys.bad_account": (
        "계좌번호 형식이 아닙니다. 12345678 또는 12345678-01 처럼 보내 주세요."
    ),
    "keys.bad_hts_id": "HTS ID 형식이 아닙니다 (공백 없는 영문·숫자 2–32자). 다시 보내 주세요.",
    "keys.send_text": "텍스트로 보내 주세요.",
    "keys.press_button": "위 버튼 중 하나를 눌러 주세요.",
    "keys.secret_deleted": (
        "{what:이/가} 담긴 메시지를 지웠습니다. 비밀값이 채팅에 남지 않도록 하기 위해서입니다."
    ),
    "keys.secret_not_deleted": (
        "{what:이/가} 담긴 메시지를 지우지 못했습니다. 직접 지워 주세요."
    ),
    "keys.what_app_key": "App Key",
    "keys.what_app_secret": "App Secret",
    "keys.env_chosen": "환경: {env}",
    "keys.summary": (
        "등록할 키\nApp Key: {app_key}\nApp Secret: {app_secret}\n계좌: {account}\n"
        "HTS ID: {hts_id}\n환경: {env}"
    ),
    "keys.saved_checking": "키를 암호화해 저장했습니다. KIS로 점검합니다…",
    # --- 2FA ----------------------------------------------------------------------
    "tfa.code": "moahook 인증 코드: {code}\n5분 동안 유효합니다. 누구에게도 알려 주지 마세요.",
    "tfa.ask": "{action}: 방금 받은 6자리 코드를 보내 주세요 (취소는 /cancel).",
    "tfa.wrong": "코드가 맞지 않습니다. 남은 시도: {left}회.",
    "tfa.void": (
        "이 코드는 무효입니다 (틀린 코드 5번, 또는 이미 사용된 코드). "
        "{command} 로 다시 시작하세요."
    ),
    "tfa.expired": "코드가 만료되었습니다. {command} 로 다시 시작하세요.",
    "tfa.not_a_code": "6자리 숫자 코드를 보내 주세요.",
    "tfa.action_keys": "키 저장",
    "tfa.action_real": "실전투자 전환",
    "tfa.action_rotate": "웹훅 주소 재발급",
    "tfa.action_delete": "키 삭제",
    "tfa.action_totp": "인증 앱 등록",
    "tfa.ask_totp": "{action}: 인증 앱(OTP)에 표시된 6자리 코드를 보내 주세요 (취소는 /cancel).",
    "totp.scan": (
        "인증 앱(Google Authenticator 등)으로 이 QR 코드를 스캔하거나 아래 키를 입력하세요:\n"
        "{secret}\n"
        "그다음 앱에 표시된 6자리 코드를 보내 주세요. 등록이 끝나면 이 메시지는 지웁니다."
    ),
    "totp.enrolled": (
        "인증 앱이 등록되었습니다. 이제 키 저장·교체, 실전투자 전환, 웹훅 주소 재발급에는 "
        "채팅 코드 대신 인증 앱 코드가 필요합니다. 해제: /totp off"
    ),
    "totp.already": "인증 앱이 이미 등록되어 있습니다. 해제하려면 /totp off",
    "totp.not_enrolled": "등록된 인증 앱이 없습니다. 등록: /totp",
    "totp.ask_off": "인증 앱 해제: 앱에 표시된 6자리 코드를 보내 주세요 (취소는 /cancel).",
    "totp.disabled": "인증 앱을 해제했습니다. 다시 채팅 코드로 확인합니다.",
    "totp.locked": "잘못된 코드가 너무 많습니다. 5분 뒤 {command} 로 다시 시도하세요.",
    "totp.usage": "사용법: /totp (인증 앱 등록), /totp off (해제)",
    # --- checklist ----------------------------------------------------------------
    "check.title": "KIS 점검 ({env})",
    "check.pending": "⏳ {name}: 확인 중…",
    "check.name_token": "환경/토큰",
    "check.name_account": "계좌",
    "check.name_fill": "체결통보 (HTS ID)",
    "check.token_ok": "✅ 환경/토큰: {env} 토큰 발급 성공",
    "check.token_other_env": (
        "❌ 환경/토큰: 이 키는 {other} 키입니다 ({env}에서는 거부, {other}에서는 발급됨).\n"
        "   고치기: /keys 로 다시 등록하며 {other:을/를} 고르세요."
    ),
    "check.token_invalid": (
        "❌ 환경/토큰: KIS가 App Key/App Secret을 거부했습니다 ({reason}).\n"
        "   고치기: KIS Developers의 앱 정보에서 App Key와 App Secret을 그대로 복사해 "
        "/keys 로 다시 등록하세요. 앱이 {env}용인지도 확인하세요."
    ),
    "check.token_rate_limited": (
        "❌ 환경/토큰: KIS는 토큰 발급을 1분에 한 번만 허용합니다 ({reason}).\n"
        "   고치기: 1분 뒤 /status → 다시 점검 (Re-check)을 누르세요."
    ),
    "check.token_temporary": (
        "❌ 환경/토큰: KIS에 일시적으로 연결하지 못했습니다 ({reason}).\n"
        "   고치기: 잠시 뒤 /status → 다시 점검 (Re-check)을 누르세요."
    ),
    "check.account_ok": "✅ 계좌: {account} 잔고 조회 성공",
    "check.account_bad": (
        "❌ 계좌: {account} 조회를 KIS가 거부했습니다 ({reason}).\n"
        "   고치기: 이 앱에 연결된 계좌번호 8자리와 상품코드(보통 01)를 확인해 "
        "/keys 로 다시 등록하세요."
    ),
    "check.account_temporary": (
        "❌ 계좌: 잔고 조회가 일시적으로 실패했습니다 ({reason}).\n"
        "   고치기: 잠시 뒤 /status → 다시 점검 (Re-check)을 누르세요."
    ),
    "check.skipped": (
        "❌ {name}: 토큰이 없어 확인하지 못했습니다. 위의 환경/토큰 문제를 먼저 고치세요."
    ),
    "check.fill_ok": "✅ 체결통보: HTS ID {hts_id:으로/로} 구독 성공",
    "check.fill_refused": (
        "❌ 체결통보: KIS가 HTS ID {hts_id:을/를} 거부했습니다 ({reason}).\n"
        "   고치기: HTS ID는 한국투자증권 로그인 ID입니다 (계좌번호 아님). "
        "/keys 로 다시 등록하세요. 체결통보가 준비될 때까지 주문은 막혀 있습니다."
    ),
    "check.fill_timeout": (
        "❌ 체결통보: {seconds:duration} 안에 KIS가 HTS ID {hts_id} 구독을 확인하지 않았습니다 "
        "({reason}).\n"
        "   고치기: HTS ID(로그인 ID)를 확인해 /keys 로 다시 등록하세요. HTS ID가 맞다면 "
        "잠시 뒤 /status → 다시 점검 (Re-check)을 누르세요. "
        "체결통보가 준비될 때까지 주문은 막혀 있습니다."
    ),
    "check.fill_approval": (
        "❌ 체결통보: 웹소켓 접속키 발급이 실패했습니다 ({reason}).\n"
        "   고치기: 잠시 뒤 /status → 다시 점검 (Re-check)을 누르세요."
    ),
    "check.all_ok": "모두 통과했습니다. 다음 단계: /webhook",
    "check.some_failed": "❌ 항목을 고치기 전까지 이 환경의 주문은 막혀 있습니다.",
    "check.active_hint": "지금 활성 환경은 {env}입니다. 바꾸려면 /mode",
    # --- mode ---------------------------------------------------------------------
    "mode.show": "현재 환경: {env}\n모의투자 키: {paper}\n실전투자 키: {real}",
    "mode.keys_validated": "점검 통과",
    "mode.keys_failed": "등록됨, 점검 실패 (/status)",
    "mode.keys_none": "없음 (/keys)",
    "mode.switched": "환경을 {env:으로/로} 바꿨습니다.",
    "mode.already": "이미 {env}입니다.",
    "mode.real_needs_keys": (
        "실전투자로 바꾸려면 점검을 통과한 실전투자 키가 필요합니다. "
        "/keys 로 등록하며 실전투자 (Real)를 고르세요."
    ),
    "mode.paper_no_keys": "아직 모의투자 키가 없습니다. 등록: /keys",
    # --- webhook ------------------------------------------------------------------
    "webhook.url": (
        "내 웹훅 주소 (TradingView 알림 → Notifications → Webhook URL):\n{url}\n"
        "이 주소는 비밀번호처럼 다루세요. 유출되면 /webhook rotate"
    ),
    "webhook.strategy_title": (
        "전략 알림 메시지 (Message 칸에 그대로 붙여 넣기, 따옴표 포함):"
    ),
    "webhook.indicator_title": (
        "지표 알림 메시지 (매수/수량을 고정, 필요하면 고쳐 쓰기):"
    ),
    "webhook.us_title": (
        "미국 주식 전략 알림 메시지 (NASDAQ·NYSE·AMEX, KIS 해외주식 거래 신청 필요; "
        "금액은 달러, 시장가는 슬리피지를 더한 지정가로 주문):"
    ),
    "webhook.notes": (
        "다른 방식: \"quantity\" 대신 \"amount\": \"1000000\"(원), "
        "\"position\": \"{{{{strategy.position_size}}}}\"(목표 보유 수량), 매도는 "
        "\"quantity\": \"all\" 또는 \"50%\". 지정가는 \"order_type\": \"limit\", "
        "\"price\": \"70000\"."
    ),
    "webhook.rotated": "새 웹훅 주소를 발급했습니다. 이전 주소는 더 이상 동작하지 않습니다.",
    "webhook.unreachable": (
        "⚠️ TradingView는 이 주소로 알림을 보낼 수 없습니다: {problems}.\n"
        "운영자가 MOAHOOK_PUBLIC_URL을 인터넷에서 닿는 https 주소(포트 443)로 "
        "설정해야 합니다."
    ),
    "webhook.problem_not_https": "https가 아닙니다",
    "webhook.problem_local_host": (
        "인터넷에서 닿지 않는 호스트입니다 (localhost·사설·링크 로컬 주소)"
    ),
    "webhook.problem_port": "포트가 80이나 443이 아닙니다",
    "webhook.problem_not_a_url": "http(s) 주소가 아닙니다",
    "webhook.usage": "사용법: /webhook 또는 /webhook rotate",
    # --- status / orders / log ----------------------------------------------------
    "status.title": "상태",
    "status.env": "환경: {env}",
    "status.keys": "키: {state}",
    "status.checks": "점검: 환경/토큰 {token} · 계좌 {account} · 체결통보 {fill}",
    "status.checked_at": "마지막 점검: {time}",
    "status.keys_failed": "등록됨, 점검 실패 (❌ 항목을 고치거나 아래 다시 점검)",
    "status.recheck_button": "다시 점검 (Re-check)",
    "recheck.wait": (
        "다시 점검은 {seconds:duration} 뒤에 할 수 있습니다. "
        "KIS는 토큰을 1분에 한 번만 발급합니다."
    ),
    "recheck.no_keys": "{env} 키가 없습니다. /keys 로 등록하세요.",
    "status.fill": "체결통보 연결: {state}",
    "status.fill_ready": "연결됨",
    "status.fill_connecting": "연결 중",
    "status.fill_failed": "실패 ({reason})",
    "status.fill_stopped": "꺼짐",
    "status.paused_yes": "알림 처리: 중지됨 (/resume)",
    "status.paused_no": "알림 처리: 동작 중",
    "status.today": "오늘 주문: {count}건",
    "orders.empty": "아직 주문이 없습니다.",
    "orders.title": "최근 주문 {count}건",
    "orders.line": "{time} {side} {stock} {quantity}주 — {outcome}",
    "orders.fills": "   체결 {filled}/{quantity}주, 평균 {price}",
    "log.empty": "아직 받은 알림이 없습니다.",
    "log.title": "최근 알림 {count}건",
    "log.line": "{time} {summary} — {outcome}",
    "log.sell_all": "전량",
    "log.position": "목표 보유 {quantity}주",
    "order_status.pending": "대기",
    "order_status.sent": "전송됨",
    "order_status.unknown": "확인 중 (응답 없음)",
    "order_status.accepted": "접수",
    "order_status.partially_filled": "일부 체결",
    "order_status.filled": "체결",
    "order_status.rejected": "KIS 거부",
    "order_status.failed": "실패",
    "alert_status.accepted": "접수됨",
    "alert_status.processing": "처리 중",
    "alert_status.done": "주문함",
    "alert_status.refused": "거절",
    "alert_status.failed": "실패",
    "alert_status.duplicate": "중복",
    # --- /test ------------------------------------------------------------------
    "test.usage": (
        "사용법: /test 다음에 TradingView 알림 메시지(JSON)를 붙여 보내세요. 주문은 보내지 "
        "않고, 지금 이 알림을 받으면 무엇을 주문할지(또는 왜 거절할지) KIS에서 방금 조회한 "
        "현재가·잔고로 알려 드립니다.\n"
        "예: /test {{\"ticker\":\"005930\",\"action\":\"buy\",\"quantity\":\"1\"}}"
    ),
    "test.unavailable": "지금은 알림을 시험할 수 없습니다. 잠시 후 다시 시도해 주세요.",
    "test.title": "🧪 알림 시험 ({env}) — 주문은 보내지 않았습니다",
    "test.would_order": "지금 받으면 주문합니다: {stock} {side} {quantity}주 {price}",
    "test.current_price": "현재가 {price} (KIS에서 방금 조회)",
    "test.held": "보유(매도 가능) {held}주 (KIS에서 방금 조회)",
    "test.market_closed": "⚠️ 다만 지금은 {reason}. 지금 받으면 거절됩니다.",
    "test.refused": "지금 받으면 거절합니다. 사유: {reason}",
    "test.failed": "KIS 조회가 실패해 판단하지 못했습니다: {reason}",
    # --- pause / delete / lang / cancel ------------------------------------------
    "pause.done": "알림 처리를 멈췄습니다. 알림은 계속 기록됩니다. 다시 시작: /resume",
    "pause.already": "이미 멈춰 있습니다. 다시 시작: /resume",
    "resume.done": "알림 처리를 다시 시작했습니다.",
    "resume.already": "이미 동작 중입니다.",
    "delete.nothing": "삭제할 키가 없습니다.",
    "delete.done": (
        "모든 키와 토큰을 지웠고, KIS 접근토큰도 폐기했습니다. 웹훅 주소도 새로 바뀌어 이전 "
        "주소는 더 이상 동작하지 않습니다 (새 주소: /webhook). 다시 쓰려면 /keys"
    ),
    "lang.set": "언어를 한국어로 바꿨습니다.",
    "lang.usage": "사용법: /lang ko 또는 /lang en",
    "cancel.done": "취소했습니다.",
    "cancel.nothing": "진행 중인 절차가 없습니다.",
    # --- words --------------------------------------------------------------------
    "env.paper": "모의투자",
    "env.real": "실전투자",
    "side.buy": "매수",
    "side.sell": "매도",
    "mark.ok": "✅",
    "mark.bad": "❌",
    "mark.none": "—",
    "unit.shares": "{quantity}주",
    "unit.won": "{amount}원",
    # --- notifications ------------------------------------------------------------
    "notice.accepted": "📨 주문 접수 ({env})\n{stock} {side} {quantity}주 {price}\n{time}",
    "notice.refused": "🚫 주문 거절 ({env})\n{subject}\n사유: {reason}\n{time}",
    "notice.failed": "⚠️ 주문 실패 ({env})\n{subject}\n사유: {reason}\n{time}",
    "notice.unknown": (
        "⏳ 주문 결과 확인 중 ({env})\n{subject}\nKIS의 응답을 받지 못해 주문이 접수됐는지 "
        "KIS에 확인하고 있습니다. 결과를 곧 알려 드립니다. 그 전에 같은 주문을 다시 내지 "
        "마세요.\n{time}"
    ),
    "notice.not_placed": "❎ 주문 안 됨 ({env})\n{subject}\n{reason}\n{time}",
    "notice.checked": (
        "KIS 확인 결과 접수된 주문입니다 (주문번호 {order_no}, 체결 {filled}/{ordered}주)"
    ),
    "notice.filled": (
        "✅ 체결 ({env})\n{stock} {side} {quantity}주 @ {price}\n{time}"
    ),
    "notice.partial": (
        "🔸 일부 체결 ({env})\n{stock} {side} {quantity}주 @ {price} "
        "(누적 {filled}/{ordered}주)\n{time}"
    ),
    "notice.rejected": "⛔ KIS 거부 ({env})\n{stock} {side} {quantity}주\n{reason}\n{time}",
    "notice.fill_down": (
        "⚠️ 체결통보 연결이 끊겼습니다 ({reason}). 다시 연결될 때까지 주문은 막힙니다."
    ),
    "notice.fill_up": "체결통보가 다시 연결되었습니다.",
    "notice.from_executions": "(체결통보가 오지 않아 KIS 일별 체결내역으로 확인한 체결입니다)",
    "notice.price_ignored": "알림의 price {price}는 시장가 주문이라 쓰지 않았습니다",
    "notice.price_market": "시장가",
    "notice.price_limit": "지정가 {price}",
    "notice.price_marketable": "시장가 (미국: 지정가 {price}로 주문, 슬리피지 포함)",
    "notice.comment": "메모: {comment}",
    # --- refusal reasons (Notice.reason_key) --------------------------------------
    "reason.paused": "알림 처리가 멈춰 있습니다 (/resume)",
    "reason.no_keys": (
        "이 환경에 점검을 통과한 키가 없습니다 (/keys 로 등록하거나 /status → 다시 점검)"
    ),
    "reason.fill_not_ready": "체결통보가 준비되지 않았습니다: {detail}",
    "reason.not_held": "보유하지 않은 종목은 매도할 수 없습니다",
    "reason.order_type": "이 주문 유형은 쓸 수 없습니다: {detail}",
    "reason.quantity_below_one": "수량이 1주 미만입니다",
    "reason.amount_below_one_share": "금액 {amount:으로/로}는 1주({price})도 살 수 없습니다",
    "reason.market_closed": "{market} 정규장 시간이 아닙니다 ({detail}). 다음 개장: {opens}",
    "reason.stale": "알림이 {lag:duration} 늦게 도착했습니다 (max_lag {max_lag:duration})",
    "reason.outcome_unknown": "KIS 응답이 없어 주문 여부를 확인하는 중입니다",
    "reason.below_one_share": "계산된 수량이 1주 미만입니다",
    "reason.insufficient_holding": (
        "{quantity}주를 팔아야 하지만 지금 매도 가능한 수량은 {sellable}주입니다"
    ),
    "reason.percent_rounds_to_zero": "보유 {held}주의 {percent}%는 1주 미만입니다",
    "reason.nothing_to_do": "이미 목표 보유 수량({held}주)입니다. 주문할 것이 없습니다",
    "reason.not_sent": "주문을 KIS에 보내기 전에 실패해 보내지 않았습니다: {detail}",
    "reason.position_against_action": (
        "목표 보유 수량 {target}주(현재 {held}주)에 맞추려면 알림의 action과 반대 방향으로 "
        "{quantity}주를 주문해야 합니다. 반대 방향으로는 주문하지 않습니다"
    ),
    "reason.earlier_unknown": (
        "이 종목의 이전 주문(#{order_id}) 결과를 아직 모릅니다. 확인될 때까지 이 종목은 "
        "주문하지 않습니다 (/orders)"
    ),
    "reason.not_placed": (
        "KIS 응답이 없던 주문을 당일 체결 내역에서 확인했더니 접수되지 않았습니다. "
        "다시 보내지 않습니다"
    ),
    "reason.inquiry_failed": "KIS 조회(현재가·잔고)가 실패해 주문하지 않았습니다: {detail}",
    "reason.kis_unreachable": "KIS에 연결하지 못해 주문이 접수되지 않았습니다: {detail}",
    "reason.kis_rejected": "[{code}] {message}",
    "reason.kis_rejected_notice": "KIS가 체결통보로 주문 거부를 알렸습니다",
    "reason.kis_ended_rejected": (
        "KIS에서 주문 {order_no:이/가} 전량 거부되었습니다 (당일 체결 내역 확인)"
    ),
    "reason.kis_ended_cancelled": (
        "KIS에서 주문 {order_no:이/가} 전량 취소되었습니다 (당일 체결 내역 확인)"
    ),
    "reason.reconcile_failed": "KIS 당일 체결 내역을 확인하지 못해 아직 결과를 모릅니다",
    "reason.user_gone": "사용자가 더 이상 없습니다",
    "reason.unreadable_alert": "저장된 알림을 읽을 수 없습니다",
    "reason.internal_error": "내부 오류로 처리하지 못했습니다 ({detail})",
    "reason.duplicate": "#{alert_id} 알림의 반복이라 무시했습니다",
    "reason.invalid_alert": "알림 메시지가 올바르지 않습니다: {detail}",
    "reason.unknown": "사유를 알 수 없습니다",
    # --- the web dashboard (/app) ---------------------------------------------------
    "commands.app": "웹 대시보드 열기",
    "app.open": (
        "웹 대시보드에서 키 등록, 환경 전환, 웹훅 주소, 주문과 알림 기록을 볼 수 있습니다. "
        "여기서 입력한 비밀값은 텔레그램을 거치지 않습니다."
    ),
    "app.button": "대시보드 열기",
    "app.browser_only": (
        "이 서버의 주소가 https가 아니어서 텔레그램 안에서는 열 수 없습니다 "
        "(텔레그램 규칙). 브라우저에서 여세요:\n{url}\n로그인: 텔레그램 사용자명 또는 ID → "
        "이 채팅으로 오는 코드."
    ),
    "keys.dashboard_first": (
        "권장: 웹 대시보드에서 등록하세요. App Secret이 텔레그램 채팅을 거치지 않습니다. "
        "아래에서 계속하면 채팅으로 등록합니다 (비밀값이 담긴 메시지는 바로 지웁니다)."
    ),
    "dash.code": (
        "moahook 대시보드 인증 코드: {code}\n요청: {action}\n5분 동안 유효합니다. "
        "직접 요청하지 않았다면 무시하세요. 누구에게도 알려 주지 마세요."
    ),
    "tfa.action_signin": "대시보드 로그인",
}

EN: Final[dict[str, str]] = {
    # --- onboarding -------------------------------------------------------------
    "start": (
        "Hello, this is moahook.\n"
        "It turns your TradingView alerts into Korea Investment & Securities (KIS) "
        "domestic stock orders and tells you here, at once, about every acceptance, "
        "fill and rejection.\n\n"
        "Three steps to start:\n"
        "1. Create an app on KIS Developers (apiportal.koreainvestment.com) and get its "
        "App Key and App Secret (a paper-trading app first is a good idea).\n"
        "2. Register the keys with /keys.\n"
        "3. Paste the URL and message from /webhook into a TradingView alert.\n\n"
        "Your webhook URL:\n{url}\n\n"
        "All commands: /help"
    ),
    "help": (
        "Commands\n"
        "/start — introduction and first steps\n"
        "/help — this list\n"
        "/keys [NAME] — register KIS keys (2FA); NAME: the account (main, isa…)\n"
        "/accounts — your accounts: the default, rename, delete\n"
        "/mode [NAME] — show or switch environment, /paper paper trading, /real real trading\n"
        "/webhook — webhook URL and alert messages (/webhook rotate: new URL)\n"
        "/status — environment, key check results (Re-check button), fill-notice connection, "
        "today's orders\n"
        "/orders — last 10 orders; cancel open orders and reservation orders\n"
        "/log — last 20 alerts and what became of them\n"
        "/test <alert message> — try an alert without ordering\n"
        "/balance [NAME] — cash, buying power, holdings and P&L (KRX and US)\n"
        "/pnl [NAME] — today's fills and realised P&L\n"
        "/limits — risk limits (per order, bought per day, orders per day)\n"
        "/confirm on [seconds], /confirm off — approve each alert with ✅/❌\n"
        "/digest on|off — a daily summary after the close\n"
        "/close SYMBOL|all — sell holdings (after a confirm button)\n"
        "/afterhours reserve|off — alerts outside hours as reservation orders (real)\n"
        "/pause, /resume — stop or restart acting on alerts\n"
        "/delete — forget all keys and tokens, revoke KIS access tokens, new webhook URL (2FA)\n"
        "/app — the web dashboard\n"
        "/totp — set up an authenticator app, /totp off to remove it\n"
        "/lang ko|en — language\n"
        "/cancel — leave the current step"
    ),
    "commands.start": "Introduction and first steps",
    "commands.help": "Command list",
    "commands.keys": "Register KIS keys",
    "commands.mode": "Switch paper/real",
    "commands.paper": "Switch to paper trading",
    "commands.real": "Switch to real trading",
    "commands.webhook": "Webhook URL and alert messages",
    "commands.status": "Status",
    "commands.orders": "Recent orders",
    "commands.log": "Recent alerts",
    "commands.test": "Try an alert without ordering",
    "commands.pause": "Stop acting on alerts",
    "commands.resume": "Act on alerts again",
    "commands.delete": "Delete keys and tokens",
    "commands.totp": "Authenticator app (OTP) on/off",
    "commands.lang": "Language (ko/en)",
    "commands.cancel": "Leave the current step",
    "unknown": "I did not understand that. /help lists the commands.",
    "error": "Something went wrong. Please try again in a moment.",
    # --- key flow -----------------------------------------------------------------
    "keys.ask_app_key": (
        "Let's register your KIS keys (/cancel at any time).\n"
        "1/5 Send your App Key. I delete the message as soon as I have read it."
    ),
    "keys.ask_app_secret": (
        "2/5 Send your App Secret. I delete the message as soon as I have read it."
    ),
    "keys.ask_account": (
        "3/5 Send your account number: 12345678 or 12345678-01 "
        "(the two digits after the dash are the product code, 01 when absent)."
    ),
    "keys.ask_hts_id": (
        "4/5 Send your HTS ID: your KIS login ID (not the account number). "
        "It subscribes you to fill notices."
    ),
    "keys.ask_env": "5/5 Which environment are these keys for? A paper-trading app means Paper.",
    "keys.bad_app_key": "That is not an App Key (16+ characters, no spaces). Send it again.",
    "keys.bad_app_secret": (
        "That is not an App Secret (32+ characters, no spaces). Send it again."
    ),
    "keys.bad_account": "That is not an account number. Send it as 12345678 or 12345678-01.",
    "keys.bad_hts_id": (
        "That is not an HTS ID (2–32 letters and digits, no spaces). Send it again."
    ),
    "keys.send_text": "Please send it as text.",
    "keys.press_button": "Please press one of the buttons above.",
    "keys.secret_deleted": (
        "I deleted your message because it contained a secret ({what}), "
        "so it does not stay in the chat."
    ),
    "keys.secret_not_deleted": (
        "I could not delete the message with your {what}. Please delete it yourself."
    ),
    "keys.what_app_key": "App Key",
    "keys.what_app_secret": "App Secret",
    "keys.env_chosen": "Environment: {env}",
    "keys.summary": (
        "Keys to register\nApp Key: {app_key}\nApp Secret: {app_secret}\nAccount: {account}\n"
        "HTS ID: {hts_id}\nEnvironment: {env}"
    ),
    "keys.saved_checking": "Keys saved, encrypted. Checking them with KIS…",
    # --- 2FA ----------------------------------------------------------------------
    "tfa.code": "moahook code: {code}\nValid for 5 minutes. Never share it with anyone.",
    "tfa.ask": "{action}: send the 6-digit code I just sent (or /cancel).",
    "tfa.wrong": "Wrong code. {left} tries left.",
    "tfa.void": (
        "This code is void (five wrong tries, or it was already used). "
        "Start again with {command}."
    ),
    "tfa.expired": "The code has expired. Start again with {command}.",
    "tfa.not_a_code": "Please send the 6-digit code.",
    "tfa.action_keys": "Save keys",
    "tfa.action_real": "Switch to real trading",
    "tfa.action_rotate": "New webhook URL",
    "tfa.action_delete": "Delete keys",
    "tfa.action_totp": "Set up an authenticator app",
    "tfa.ask_totp": "{action}: send the 6-digit code your authenticator app shows (or /cancel).",
    "totp.scan": (
        "Scan this QR code with an authenticator app (Google Authenticator, …) or type in "
        "this key:\n{secret}\nThen send the 6-digit code the app shows. I delete this "
        "message once you are set up."
    ),
    "totp.enrolled": (
        "Authenticator app set up. Saving or replacing keys, switching to real trading and "
        "a new webhook URL now take its code instead of a chat code. Remove it: /totp off"
    ),
    "totp.already": "An authenticator app is set up already. To remove it: /totp off",
    "totp.not_enrolled": "No authenticator app is set up. Set one up: /totp",
    "totp.ask_off": "Remove the authenticator app: send the 6-digit code it shows (or /cancel).",
    "totp.disabled": "Authenticator app removed. Chat codes confirm sensitive actions again.",
    "totp.locked": "Too many wrong codes. Try again with {command} in 5 minutes.",
    "totp.usage": "Usage: /totp (set up an authenticator app), /totp off (remove it)",
    # --- checklist ----------------------------------------------------------------
    "check.title": "KIS checks ({env})",
    "check.pending": "⏳ {name}: checking…",
    "check.name_token": "Environment/token",
    "check.name_account": "Account",
    "check.name_fill": "Fill notice (HTS ID)",
    "check.token_ok": "✅ Environment/token: {env} token issued",
    "check.token_other_env": (
        "❌ Environment/token: these keys belong to the other environment, {other} "
        "(refused in {env}, accepted in {other}).\n"
        "   Fix: /keys again and choose {other}."
    ),
    "check.token_invalid": (
        "❌ Environment/token: KIS refused the App Key/App Secret ({reason}).\n"
        "   Fix: copy the App Key and App Secret exactly from your app on KIS Developers "
        "and /keys again. Check the app is a {env} app."
    ),
    "check.token_rate_limited": (
        "❌ Environment/token: KIS issues a token only once a minute ({reason}).\n"
        "   Fix: in a minute, /status → Re-check."
    ),
    "check.token_temporary": (
        "❌ Environment/token: KIS could not be reached just now ({reason}).\n"
        "   Fix: in a moment, /status → Re-check."
    ),
    "check.account_ok": "✅ Account: {account} balance inquiry succeeded",
    "check.account_bad": (
        "❌ Account: KIS refused account {account} ({reason}).\n"
        "   Fix: use the 8-digit account number linked to this app and its product code "
        "(usually 01), then /keys again."
    ),
    "check.account_temporary": (
        "❌ Account: the balance inquiry failed for now ({reason}).\n"
        "   Fix: in a moment, /status → Re-check."
    ),
    "check.skipped": (
        "❌ {name}: not checked without a token. Fix the environment/token problem above first."
    ),
    "check.fill_ok": "✅ Fill notice: subscribed with HTS ID {hts_id}",
    "check.fill_refused": (
        "❌ Fill notice: KIS refused HTS ID {hts_id} ({reason}).\n"
        "   Fix: the HTS ID is your KIS login ID (not the account number); /keys again. "
        "Orders stay blocked until fill notices work."
    ),
    "check.fill_timeout": (
        "❌ Fill notice: KIS did not confirm the subscription for HTS ID {hts_id} within "
        "{seconds:duration} ({reason}).\n"
        "   Fix: check your HTS ID (your KIS login ID) and /keys again; if it is right, "
        "/status → Re-check in a moment. Orders stay blocked until fill notices work."
    ),
    "check.fill_approval": (
        "❌ Fill notice: the WebSocket approval key could not be issued ({reason}).\n"
        "   Fix: in a moment, /status → Re-check."
    ),
    "check.all_ok": "All checks passed. Next step: /webhook",
    "check.some_failed": "Orders in this environment stay blocked until every ❌ is fixed.",
    "check.active_hint": "The active environment is {env}. To switch: /mode",
    # --- mode ---------------------------------------------------------------------
    "mode.show": "Active environment: {env}\nPaper keys: {paper}\nReal keys: {real}",
    "mode.keys_validated": "checks passed",
    "mode.keys_failed": "registered, checks failed (/status)",
    "mode.keys_none": "none (/keys)",
    "mode.switched": "Switched to {env}.",
    "mode.already": "Already on {env}.",
    "mode.real_needs_keys": (
        "Real trading needs real keys that passed the checks. "
        "Register them with /keys and choose 실전투자 (Real)."
    ),
    "mode.paper_no_keys": "You have no paper keys yet: /keys",
    # --- webhook ------------------------------------------------------------------
    "webhook.url": (
        "Your webhook URL (TradingView alert → Notifications → Webhook URL):\n{url}\n"
        "Treat it like a password. If it leaks: /webhook rotate"
    ),
    "webhook.strategy_title": (
        "Strategy alert message (paste it into the Message box as is, quotes included):"
    ),
    "webhook.indicator_title": (
        "Indicator alert message (fixed action and quantity, edit as needed):"
    ),
    "webhook.us_title": (
        "US stock strategy alert message (NASDAQ, NYSE, AMEX; needs overseas trading "
        "enabled at KIS; amounts in USD; market orders go as limits with slippage):"
    ),
    "webhook.notes": (
        "Other sizing: \"amount\": \"1000000\" (KRW) instead of \"quantity\", "
        "\"position\": \"{{{{strategy.position_size}}}}\" (target holding); sells also take "
        "\"quantity\": \"all\" or \"50%\". Limit orders: \"order_type\": \"limit\", "
        "\"price\": \"70000\"."
    ),
    "webhook.rotated": "New webhook URL issued. The old one no longer works.",
    "webhook.unreachable": (
        "⚠️ TradingView cannot post to this URL: {problems}.\n"
        "The operator must set MOAHOOK_PUBLIC_URL to an https address reachable from the "
        "internet (port 443)."
    ),
    "webhook.problem_not_https": "it is not https",
    "webhook.problem_local_host": (
        "its host cannot be reached from the internet (localhost, private or link-local)"
    ),
    "webhook.problem_port": "its port is not 80 or 443",
    "webhook.problem_not_a_url": "it is not an http(s) URL",
    "webhook.usage": "Usage: /webhook or /webhook rotate",
    # --- status / orders / log ----------------------------------------------------
    "status.title": "Status",
    "status.env": "Environment: {env}",
    "status.keys": "Keys: {state}",
    "status.checks": "Checks: environment/token {token} · account {account} · fill notice {fill}",
    "status.checked_at": "Last checked: {time}",
    "status.keys_failed": "registered, checks failed (fix the ❌ items or Re-check below)",
    "status.recheck_button": "Re-check",
    "recheck.wait": (
        "You can re-check in {seconds:duration}: KIS issues a token only once a minute."
    ),
    "recheck.no_keys": "No {env} keys to check. Register them with /keys.",
    "status.fill": "Fill-notice connection: {state}",
    "status.fill_ready": "connected",
    "status.fill_connecting": "connecting",
    "status.fill_failed": "failed ({reason})",
    "status.fill_stopped": "off",
    "status.paused_yes": "Acting on alerts: paused (/resume)",
    "status.paused_no": "Acting on alerts: on",
    "status.today": "Orders today: {count}",
    "orders.empty": "No orders yet.",
    "orders.title": "Last {count} orders",
    "orders.line": "{time} {side} {stock} {quantity} sh — {outcome}",
    "orders.fills": "   filled {filled}/{quantity} sh, average {price}",
    "log.empty": "No alerts received yet.",
    "log.title": "Last {count} alerts",
    "log.line": "{time} {summary} — {outcome}",
    "log.sell_all": "all",
    "log.position": "target {quantity} sh",
    "order_status.pending": "pending",
    "order_status.sent": "sent",
    "order_status.unknown": "checking (no answer)",
    "order_status.accepted": "accepted",
    "order_status.partially_filled": "partially filled",
    "order_status.filled": "filled",
    "order_status.rejected": "rejected by KIS",
    "order_status.failed": "failed",
    "alert_status.accepted": "received",
    "alert_status.processing": "processing",
    "alert_status.done": "ordered",
    "alert_status.refused": "refused",
    "alert_status.failed": "failed",
    "alert_status.duplicate": "duplicate",
    # --- /test ------------------------------------------------------------------
    "test.usage": (
        "Usage: /test followed by a TradingView alert message (JSON). Nothing is ordered: "
        "I tell you what the alert would order now (or why it would be refused), sized "
        "with the price and holding KIS reports right now.\n"
        "Example: /test {{\"ticker\":\"005930\",\"action\":\"buy\",\"quantity\":\"1\"}}"
    ),
    "test.unavailable": "Alerts cannot be tested just now. Please try again in a moment.",
    "test.title": "🧪 Alert test ({env}) — nothing was ordered",
    "test.would_order": "Received now, it would order: {stock} {side} {quantity} sh {price}",
    "test.current_price": "current price {price} (just asked KIS)",
    "test.held": "held (sellable) {held} sh (just asked KIS)",
    "test.market_closed": "⚠️ But right now {reason}: received now, it would be refused.",
    "test.refused": "Received now, it would be refused. Reason: {reason}",
    "test.failed": "A KIS inquiry failed, so it cannot tell: {reason}",
    # --- pause / delete / lang / cancel ------------------------------------------
    "pause.done": "Paused: alerts are recorded but not acted on. To restart: /resume",
    "pause.already": "Already paused. To restart: /resume",
    "resume.done": "Acting on alerts again.",
    "resume.already": "Already acting on alerts.",
    "delete.nothing": "There are no keys to delete.",
    "delete.done": (
        "All your keys and tokens are deleted and KIS's access tokens revoked. Your webhook "
        "URL changed too: the old one no longer works (new one: /webhook). To start again: "
        "/keys"
    ),
    "lang.set": "Language set to English.",
    "lang.usage": "Usage: /lang ko or /lang en",
    "cancel.done": "Cancelled.",
    "cancel.nothing": "Nothing to cancel.",
    # --- words --------------------------------------------------------------------
    "env.paper": "paper trading",
    "env.real": "real trading",
    "side.buy": "buy",
    "side.sell": "sell",
    "mark.ok": "✅",
    "mark.bad": "❌",
    "mark.none": "—",
    "unit.shares": "{quantity} sh",
    "unit.won": "{amount} KRW",
    # --- notifications ------------------------------------------------------------
    "notice.accepted": "📨 Order accepted ({env})\n{stock} {side} {quantity} sh {price}\n{time}",
    "notice.refused": "🚫 Order refused ({env})\n{subject}\nReason: {reason}\n{time}",
    "notice.failed": "⚠️ Order failed ({env})\n{subject}\nReason: {reason}\n{time}",
    "notice.unknown": (
        "⏳ Order outcome unknown ({env})\n{subject}\nKIS did not answer: checking with KIS "
        "whether the order was placed. You will hear the result shortly; do not place it "
        "again meanwhile.\n{time}"
    ),
    "notice.not_placed": "❎ Order not placed ({env})\n{subject}\n{reason}\n{time}",
    "notice.checked": (
        "Checked with KIS: the order was placed (order no. {order_no}, filled "
        "{filled}/{ordered} sh)"
    ),
    "notice.filled": "✅ Filled ({env})\n{stock} {side} {quantity} sh @ {price}\n{time}",
    "notice.partial": (
        "🔸 Partially filled ({env})\n{stock} {side} {quantity} sh @ {price} "
        "({filled}/{ordered} sh so far)\n{time}"
    ),
    "notice.rejected": (
        "⛔ Rejected by KIS ({env})\n{stock} {side} {quantity} sh\n{reason}\n{time}"
    ),
    "notice.fill_down": (
        "⚠️ Fill-notice connection lost ({reason}). Orders are blocked until it is back."
    ),
    "notice.fill_up": "Fill notices are connected again.",
    "notice.from_executions": (
        "(no fill notice came for this: confirmed with KIS's daily executions)"
    ),
    "notice.price_ignored": "The alert's price {price} was not used: this is a market order",
    "notice.price_market": "at market",
    "notice.price_limit": "limit {price}",
    "notice.price_marketable": "at market (US: sent as a limit at {price}, slippage included)",
    "notice.comment": "Note: {comment}",
    # --- refusal reasons (Notice.reason_key) --------------------------------------
    "reason.paused": "acting on alerts is paused (/resume)",
    "reason.no_keys": (
        "no keys that passed the checks for this environment (/keys, or /status → Re-check)"
    ),
    "reason.fill_not_ready": "fill notices are not ready: {detail}",
    "reason.not_held": "cannot sell a stock that is not held",
    "reason.order_type": "this order type is not available: {detail}",
    "reason.quantity_below_one": "quantity is below 1 share",
    "reason.amount_below_one_share": "{amount} does not buy one share at {price}",
    "reason.market_closed": "{market}'s regular session is closed ({detail}); it opens {opens}",
    "reason.stale": "the alert arrived {lag:duration} late (max_lag {max_lag:duration})",
    "reason.outcome_unknown": "KIS did not answer; checking whether the order was placed",
    "reason.below_one_share": "the size comes to less than 1 share",
    "reason.insufficient_holding": (
        "{quantity} sh would have to be sold but only {sellable} sh can be sold now"
    ),
    "reason.percent_rounds_to_zero": "{percent}% of the {held} sh held is less than 1 share",
    "reason.nothing_to_do": "already at the target position ({held} sh); nothing to order",
    "reason.not_sent": "the order was not sent (failed before it left for KIS): {detail}",
    "reason.position_against_action": (
        "reaching the target position of {target} sh from {held} held needs {quantity} sh "
        "the other way than the alert's action: no order against it"
    ),
    "reason.earlier_unknown": (
        "the outcome of an earlier order of this stock (#{order_id}) is still unknown; "
        "nothing more is sent for it until it is checked (/orders)"
    ),
    "reason.not_placed": (
        "KIS did not answer; its daily executions show the order was not placed. "
        "It is not sent again"
    ),
    "reason.inquiry_failed": "a KIS inquiry (price or balance) failed, no order sent: {detail}",
    "reason.kis_unreachable": "KIS could not be reached; the order was not placed: {detail}",
    "reason.kis_rejected": "[{code}] {message}",
    "reason.kis_rejected_notice": "KIS reported the refusal in a fill notice",
    "reason.kis_ended_rejected": "KIS rejected all of order {order_no} (checked daily executions)",
    "reason.kis_ended_cancelled": (
        "KIS cancelled all of order {order_no} (checked daily executions)"
    ),
    "reason.reconcile_failed": "KIS's daily executions could not be checked; still unknown",
    "reason.user_gone": "the user no longer exists",
    "reason.unreadable_alert": "the stored alert cannot be read",
    "reason.internal_error": "an internal error stopped it ({detail})",
    "reason.duplicate": "a repeat of alert #{alert_id}, dropped",
    "reason.invalid_alert": "the alert message is not valid: {detail}",
    "reason.unknown": "no reason given",
    # --- the web dashboard (/app) ---------------------------------------------------
    "commands.app": "Open the web dashboard",
    "app.open": (
        "The web dashboard registers keys, switches paper/real and shows your webhook URL, "
        "orders and alert log. Secrets typed there never pass through Telegram."
    ),
    "app.button": "Open the dashboard",
    "app.browser_only": (
        "This server's address is not https, so Telegram cannot open it inside the app "
        "(Telegram's rule). Open it in a browser:\n{url}\nSign in with your Telegram "
        "username or id, then the code sent to this chat."
    ),
    "keys.dashboard_first": (
        "Recommended: register on the web dashboard, so the App Secret never passes "
        "through this chat. Continue below to register here instead (messages carrying "
        "a secret are deleted at once)."
    ),
    "dash.code": (
        "moahook dashboard code: {code}\nFor: {action}\nValid for 5 minutes. If you did "
        "not ask for it, ignore it. Never share it with anyone."
    ),
    "tfa.action_signin": "Dashboard sign-in",
}

# SPEC section 15's commands keep their sentences in their own module.
KO.update(texts_portfolio.KO | texts_portfolio.KO_REASONS | texts_accounts.KO)
EN.update(texts_portfolio.EN | texts_portfolio.EN_REASONS | texts_accounts.EN)

CATALOGS: Final[dict[Lang, dict[str, str]]] = {"ko": KO, "en": EN}


def parse_lang(code: str | None) -> Lang | None:
    """`ko`/`en` from a user's choice or Telegram's `language_code` (`en-US` → `en`)."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    if base == "ko":
        return "ko"
    if base == "en":
        return "en"
    return None


class _CatalogFormatter(string.Formatter):
    def __init__(self, lang: Lang) -> None:
        super().__init__()
        self._lang = lang

    def format_field(self, value: object, format_spec: str) -> str:
        if format_spec in PAIRS:
            return with_particle(str(value), format_spec)
        if format_spec == "duration":
            return duration(float(str(value).replace(",", "")), self._lang)
        return str(super().format_field(value, format_spec))


_FORMATTERS: Final[dict[Lang, _CatalogFormatter]] = {
    lang: _CatalogFormatter(lang) for lang in LANGS
}


def t(lang: Lang, key: str, **params: object) -> str:
    """The text for `key` in `lang`; a missing key is a bug and raises `KeyError`."""
    return _FORMATTERS[lang].format(CATALOGS[lang][key], **params)
