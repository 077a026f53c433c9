"""The sentences of the portfolio commands (SPEC section 15), in Korean and English.

Merged into `bot.texts` catalogs; the same rules apply (plain text, `str.format` names,
both catalogs with the same keys and placeholders).
"""

from __future__ import annotations

from typing import Final

# The confirm-mode buttons read the same in both languages, as SPEC section 15 names them.
BUTTON_PLACE: Final = "✅ Place"
BUTTON_SKIP: Final = "❌ Skip"

KO: Final[dict[str, str]] = {
    "commands.balance": "잔고 (현금, 보유 종목, 손익)",
    "commands.pnl": "오늘 체결과 실현손익",
    "commands.limits": "위험 한도 보기·설정",
    "commands.confirm": "확인 모드 (알림마다 주문 확인)",
    "commands.digest": "하루 요약 켜기·끄기",
    "commands.close": "보유 종목 매도 (/close 종목 또는 all)",
    "commands.afterhours": "장외 알림을 예약주문으로 (실전투자)",
    "alert_status.awaiting": "확인 대기",
    "market.KRX": "국내 (KRX)",
    "market.US": "미국 (US)",
    # --- /balance -------------------------------------------------------------------
    "balance.title": "💼 잔고 ({env}) {time}",
    "balance.no_keys": (
        "점검을 통과한 {env} 키가 없습니다. /keys 로 등록하거나 /status 에서 다시 점검하세요."
    ),
    "balance.market": "— {market} —",
    "balance.cash": "예수금 {cash} · 주문가능(D+2) {power}",
    "balance.power": "주문가능 {power}",
    "balance.holding": "{stock} {quantity}주 · 평균 {avg} · 현재 {price}",
    "balance.holding_value": "   평가 {value} · 손익 {profit} ({rate})",
    "balance.total": "합계: 평가 {value} · 손익 {profit} ({rate})",
    "balance.none": "보유 종목 없음",
    "balance.failed": "KIS에 물어보지 못했습니다 ({reason}). 잠시 뒤 다시 시도하세요.",
    "balance.unknown": "—",
    # --- /pnl -----------------------------------------------------------------------
    "pnl.title": "📈 오늘 체결과 실현손익 ({env})",
    "pnl.market": "— {market} {day} —",
    "pnl.fill": "{time} {stock} {side} {quantity}주 @ {price}",
    "pnl.no_fills": "체결 없음",
    "pnl.realised_kis": "실현손익 (KIS 집계): {pnl}",
    "pnl.realised_computed": "실현손익 (체결가와 평균매입가로 계산): {pnl}",
    "pnl.paper_note": "모의투자에는 KIS 실현손익 조회가 없어 체결가와 평균매입가로 계산했습니다.",
    "pnl.missing_cost": "평균매입가를 몰라 계산에서 빠진 매도: {symbols}",
    "pnl.from_records": "KIS 당일 체결 조회가 비어 있어 moahook이 받은 체결통보로 보여 드립니다.",
    "pnl.failed": "KIS에 물어보지 못했습니다 ({reason}).",
    # --- /limits --------------------------------------------------------------------
    "limits.title": "위험 한도 (알림 주문마다 KIS에 보내기 전에 확인)",
    "limits.line_order": "1회 주문 최대: {krw} · {usd}",
    "limits.line_day": "하루 매수 최대: {krw} · {usd}",
    "limits.line_orders": "하루 주문 수 최대: {orders}",
    "limits.none": "없음",
    "limits.used": "오늘 {market}: 주문 {orders}건 · 매수 {bought}",
    "limits.used_orders": "오늘 {market}: 주문 {orders}건",
    "limits.usage": (
        "설정: /limits order 1000000 (1회 주문 최대 원), /limits day 5000000 (하루 매수 최대 원), "
        "/limits orders 50 (하루 주문 수). 미국 주식은 달러 한도: /limits order 500 usd. "
        "해제: /limits off order (달러는 /limits off order usd).\n"
        "한도를 올리거나 해제하려면 인증 코드가 필요하고, 낮추는 것은 바로 됩니다. "
        "하루는 시장의 날짜입니다 (KRX: 한국 날짜, 미국: 뉴욕 날짜). "
        "/close 매도에는 한도가 없습니다."
    ),
    "limits.set": "{name} 한도를 {value}(으)로 정했습니다.",
    "limits.off": "{name} 한도를 해제했습니다.",
    "limits.unchanged": "{name} 한도는 이미 {value}입니다.",
    "limits.bad_name": "'{name}'은(는) 한도 이름이 아닙니다: order, day, orders 중 하나입니다.",
    "limits.bad_value": (
        "'{value}'은(는) 한도 값이 아닙니다: 0보다 큰 수를 보내 주세요 (원·주문 수는 정수, "
        "달러는 소수점 둘째 자리까지)."
    ),
    "limits.bad_currency": "'{currency}'은(는) 통화가 아닙니다: krw 또는 usd입니다.",
    "limits.orders_no_currency": "주문 수 한도(orders)에는 통화가 없습니다.",
    "limits.name_order": "1회 주문",
    "limits.name_day": "하루 매수",
    "limits.name_orders": "하루 주문 수",
    "limits.count": "{count}건",
    "tfa.action_limits": "한도 올리기·해제",
    # --- /confirm -------------------------------------------------------------------
    "confirm.on": (
        "확인 모드를 켰습니다: 알림마다 ✅ Place / ❌ Skip 버튼이 있는 메시지를 보내고, "
        "{seconds}초 안에 누르지 않으면 만료됩니다. TradingView에는 바로 응답합니다."
    ),
    "confirm.off": "확인 모드를 껐습니다: 알림이 바로 주문이 됩니다.",
    "confirm.state_on": "확인 모드: 켜짐 ({seconds}초). 끄기: /confirm off",
    "confirm.state_off": "확인 모드: 꺼짐. 켜기: /confirm on [초]",
    "confirm.usage": (
        "사용법: /confirm on [초] ({low}–{high}초, 기본 {default}초) 또는 /confirm off"
    ),
    "card.confirm": (
        "❓ 주문할까요? ({env})\n{subject}\n{seconds}초 안에 눌러 주세요. 누르는 순간의 "
        "현재가와 잔고로 다시 계산해 주문합니다."
    ),
    "card.confirm_expired": "⌛ 시간 안에 확인하지 않아 주문하지 않았습니다 ({env})\n{subject}",
    "approval.placing": "✅ 주문합니다. 지금의 현재가와 잔고로 다시 계산합니다.",
    "approval.skipped": "❌ 건너뛰었습니다. 주문하지 않습니다.",
    "approval.expired": "⌛ 이미 만료되었습니다. 주문하지 않습니다.",
    "approval.already": "이미 처리되었습니다.",
    "sizing.quantity": "{value}주",
    "sizing.amount": "금액 {value}",
    "sizing.all": "보유 전량",
    "sizing.percent": "보유의 {value}%",
    "sizing.position": "목표 보유 {value}주",
    # --- /digest --------------------------------------------------------------------
    "digest.on": (
        "하루 요약을 켰습니다: KRX 장 마감(15:40) 뒤와 미국 장 마감 뒤에 주문·체결·거절·손익을 "
        "보내 드립니다 (휴장일은 빼고)."
    ),
    "digest.off": "하루 요약을 껐습니다.",
    "digest.state_on": "하루 요약: 켜짐. 끄기: /digest off",
    "digest.state_off": "하루 요약: 꺼짐. 켜기: /digest on",
    "digest.usage": "사용법: /digest on 또는 /digest off",
    "card.digest_title": "📋 {market} 하루 요약 {day} ({env})",
    "card.digest_orders": "주문 {orders}건: {outcomes}",
    "card.digest_no_orders": "주문 없음",
    "card.digest_fills": "체결:",
    "card.digest_fill": "  {stock} {side} {quantity}주 @ {price}",
    "card.digest_traded": "매수 {bought} · 매도 {sold}",
    "card.digest_refused": "거절된 알림 {count}건: {reasons}",
    "card.digest_pnl_kis": "실현손익 (KIS 집계): {pnl}",
    "card.digest_pnl_computed": "실현손익 (계산): {pnl}",
    "card.digest_pnl_unavailable": "실현손익: KIS에 물어보지 못했습니다",
    # --- /afterhours and reservations -------------------------------------------------
    "afterhours.on": (
        "장외 예약을 켰습니다: KRX 장 시간 밖(15:40–다음 영업일 07:30, 23:40–00:10 제외)에 온 "
        "알림은 다음 장 예약주문이 됩니다. KIS는 예약주문 처리 결과를 알려 주지 않으므로 "
        "장 시작 뒤 확인해 알려 드립니다."
    ),
    "afterhours.off": "장외 예약을 껐습니다: 장 시간 밖의 알림은 사유와 함께 거절됩니다.",
    "afterhours.paper": (
        "예약주문은 실전투자에서만 됩니다 (KIS에 모의투자 예약주문이 없습니다). "
        "/mode 로 실전투자로 바꾼 뒤 다시 켜 주세요."
    ),
    "afterhours.state_on": "장외 예약: 켜짐. 끄기: /afterhours off",
    "afterhours.state_off": "장외 예약: 꺼짐. 켜기: /afterhours reserve",
    "afterhours.usage": "사용법: /afterhours reserve 또는 /afterhours off",
    "card.resv_placed": (
        "📅 예약주문 접수 ({env})\n{subject}\n다음 장 시작({opens})에 KIS가 주문합니다. KIS는 "
        "처리 결과를 알려 주지 않으므로 장 시작 뒤 확인해 알려 드립니다. 취소: /orders"
    ),
    "card.resv_failed": "⚠️ 예약주문 실패 ({env})\n{subject}\n사유: {reason}",
    "card.resv_unknown": (
        "⚠️ 예약주문 응답이 없습니다 ({env})\n{subject}\nKIS 예약 내역으로 접수 여부를 확인합니다. "
        "다시 보내지 않습니다."
    ),
    "card.resv_executed": (
        "✅ 예약주문 처리됨 ({env})\n{subject}\n주문번호 {order_no} · 체결 {filled}주{price}"
    ),
    "card.resv_rejected": "⛔ 예약주문 거부 ({env})\n{subject}\n사유: {reason}",
    "card.resv_cancelled": "🗑 예약주문 취소됨 ({env})\n{subject}",
    # --- /orders: open orders, cancels -----------------------------------------------
    "orders.open_mark": "⏳ ",
    "orders.partial_mark": "🔸 ",
    "orders.cancelled_mark": "🗑 ",
    "orders.open_hint": "⏳ 미체결 · 🔸 일부 체결: 아래 버튼으로 남은 수량을 취소합니다.",
    "orders.reservations": "예약주문",
    "orders.reservation": "{date} {stock} {side} {quantity}주 {price} — {status}",
    "orders.cancel_button": "취소 #{id} {symbol}",
    "orders.resv_cancel_button": "예약 취소 #{id} {symbol}",
    "cancel.done": "🗑 취소를 KIS가 받았습니다: #{id} {stock} 남은 {remaining}주",
    "cancel.refused": "KIS가 취소를 거부했습니다 (#{id}): {reason}",
    "cancel.unknown": "KIS 응답이 없어 취소 여부를 모릅니다 (#{id}). /orders 로 확인하세요.",
    "cancel.already": "이 주문(#{id})의 취소는 이미 보냈습니다.",
    "cancel.not_open": "이 주문(#{id})은 더 이상 미체결이 아닙니다.",
    "cancel.failed": "취소하지 못했습니다 (#{id}): {reason}",
    "resv_status.pending": "확인 중",
    "resv_status.reserved": "예약됨",
    "resv_status.unknown": "확인 중 (응답 없음)",
    "resv_status.cancelling": "취소 중",
    # --- /close ---------------------------------------------------------------------
    "close.usage": "사용법: /close 005930, /close NASDAQ:AAPL 또는 /close all",
    "close.ask": (
        "⚠️ 보유 수량 전부를 시장가로 매도할까요? ({env})\n{lines}\n"
        "매도 가능한 수량을 주문하는 순간 다시 확인합니다. 위험 한도와 확인 모드는 적용되지 않고, "
        "알림이 멈춰 있어도 주문합니다."
    ),
    "close.line": "· {stock} {quantity}주 (매도 가능 {sellable}주)",
    "close.button_sell": "✅ 매도 (Sell)",
    "close.button_cancel": "❌ 그만두기 (Cancel)",
    "close.not_held": "{symbol}을(를) 보유하고 있지 않습니다.",
    "close.nothing": "매도할 보유 종목이 없습니다.",
    "close.sending": "매도 주문을 보냅니다: {count}종목. 결과는 주문 알림으로 옵니다.",
    "close.already": "이미 보냈습니다.",
    "close.dropped": "그만두었습니다. 주문하지 않았습니다.",
    "close.bad_symbol": "종목을 알 수 없습니다: {detail}",
}

EN: Final[dict[str, str]] = {
    "commands.balance": "Balance (cash, holdings, P&L)",
    "commands.pnl": "Today's fills and realised P&L",
    "commands.limits": "Show or set risk limits",
    "commands.confirm": "Confirm mode (approve each order)",
    "commands.digest": "Daily summary on/off",
    "commands.close": "Sell holdings (/close SYMBOL or all)",
    "commands.afterhours": "Alerts outside hours as reservations (real)",
    "alert_status.awaiting": "awaiting confirmation",
    "market.KRX": "Korea (KRX)",
    "market.US": "US",
    # --- /balance -------------------------------------------------------------------
    "balance.title": "💼 Balance ({env}) {time}",
    "balance.no_keys": (
        "No {env} keys that passed the checks. Register them with /keys, or Re-check in /status."
    ),
    "balance.market": "— {market} —",
    "balance.cash": "Cash {cash} · buying power (D+2) {power}",
    "balance.power": "Buying power {power}",
    "balance.holding": "{stock} {quantity} sh · avg {avg} · now {price}",
    "balance.holding_value": "   value {value} · P&L {profit} ({rate})",
    "balance.total": "Total: value {value} · P&L {profit} ({rate})",
    "balance.none": "No holdings",
    "balance.failed": "KIS could not be asked ({reason}). Try again in a moment.",
    "balance.unknown": "—",
    # --- /pnl -----------------------------------------------------------------------
    "pnl.title": "📈 Today's fills and realised P&L ({env})",
    "pnl.market": "— {market} {day} —",
    "pnl.fill": "{time} {stock} {side} {quantity} sh @ {price}",
    "pnl.no_fills": "No fills",
    "pnl.realised_kis": "Realised P&L (KIS): {pnl}",
    "pnl.realised_computed": (
        "Realised P&L (computed from fill and average purchase prices): {pnl}"
    ),
    "pnl.paper_note": (
        "Paper trading has no realised-P&L inquiry at KIS: computed from fill prices and "
        "average purchase prices."
    ),
    "pnl.missing_cost": "Sells left out (average purchase price unknown): {symbols}",
    "pnl.from_records": (
        "KIS's daily executions came back empty: shown from the fill notices moahook received."
    ),
    "pnl.failed": "KIS could not be asked ({reason}).",
    # --- /limits --------------------------------------------------------------------
    "limits.title": "Risk limits (checked for every alert's order before KIS is asked)",
    "limits.line_order": "Most per order: {krw} · {usd}",
    "limits.line_day": "Most bought per day: {krw} · {usd}",
    "limits.line_orders": "Most orders per day: {orders}",
    "limits.none": "none",
    "limits.used": "Today on {market}: {orders} orders · {bought} bought",
    "limits.used_orders": "Today on {market}: {orders} orders",
    "limits.usage": (
        "Set: /limits order 1000000 (most KRW per order), /limits day 5000000 (most KRW bought "
        "per day), /limits orders 50 (most orders per day). US stocks have dollar limits: "
        "/limits order 500 usd. Remove: /limits off order (dollars: /limits off order usd).\n"
        "Raising or removing a limit needs a 2FA code; lowering one does not. A day is the "
        "market's date (KRX: Korean date, US: New York date). /close sells have no limits."
    ),
    "limits.set": "{name} limit set to {value}.",
    "limits.off": "{name} limit removed.",
    "limits.unchanged": "The {name} limit is {value} already.",
    "limits.bad_name": "'{name}' is not a limit: use order, day or orders.",
    "limits.bad_value": (
        "'{value}' is not a limit: send a number above 0 (whole KRW and order counts, "
        "dollars to the cent)."
    ),
    "limits.bad_currency": "'{currency}' is not a currency: use krw or usd.",
    "limits.orders_no_currency": "The orders limit (orders per day) has no currency.",
    "limits.name_order": "Per-order",
    "limits.name_day": "Daily buying",
    "limits.name_orders": "Orders-per-day",
    "limits.count": "{count} orders",
    "tfa.action_limits": "Raise or remove a limit",
    # --- /confirm -------------------------------------------------------------------
    "confirm.on": (
        "Confirm mode on: each alert becomes a message with ✅ Place / ❌ Skip buttons; it "
        "expires after {seconds} s. TradingView still gets its answer at once."
    ),
    "confirm.off": "Confirm mode off: alerts become orders at once.",
    "confirm.state_on": "Confirm mode: on ({seconds} s). Turn off: /confirm off",
    "confirm.state_off": "Confirm mode: off. Turn on: /confirm on [seconds]",
    "confirm.usage": (
        "Usage: /confirm on [seconds] ({low}–{high} s, default {default}) or /confirm off"
    ),
    "card.confirm": (
        "❓ Place this order? ({env})\n{subject}\nPress within {seconds} s. It is sized again "
        "with the price and holdings at the moment you press."
    ),
    "card.confirm_expired": "⌛ Not confirmed in time: no order ({env})\n{subject}",
    "approval.placing": "✅ Placing: sized again with the current price and holdings.",
    "approval.skipped": "❌ Skipped: no order.",
    "approval.expired": "⌛ This has expired: no order.",
    "approval.already": "Already decided.",
    "sizing.quantity": "{value} sh",
    "sizing.amount": "amount {value}",
    "sizing.all": "the whole holding",
    "sizing.percent": "{value}% of the holding",
    "sizing.position": "target position {value} sh",
    # --- /digest --------------------------------------------------------------------
    "digest.on": (
        "Daily summary on: after the KRX close (15:40 KST) and after the US close you get the "
        "day's orders, fills, refusals and P&L (not on days the market is closed)."
    ),
    "digest.off": "Daily summary off.",
    "digest.state_on": "Daily summary: on. Turn off: /digest off",
    "digest.state_off": "Daily summary: off. Turn on: /digest on",
    "digest.usage": "Usage: /digest on or /digest off",
    "card.digest_title": "📋 {market} day summary {day} ({env})",
    "card.digest_orders": "Orders: {orders} ({outcomes})",
    "card.digest_no_orders": "No orders",
    "card.digest_fills": "Fills:",
    "card.digest_fill": "  {stock} {side} {quantity} sh @ {price}",
    "card.digest_traded": "Bought {bought} · sold {sold}",
    "card.digest_refused": "Refused alerts: {count} ({reasons})",
    "card.digest_pnl_kis": "Realised P&L (KIS): {pnl}",
    "card.digest_pnl_computed": "Realised P&L (computed): {pnl}",
    "card.digest_pnl_unavailable": "Realised P&L: KIS could not be asked",
    # --- /afterhours and reservations -------------------------------------------------
    "afterhours.on": (
        "After-hours reservations on: a KRX alert outside hours (15:40 to 07:30 of the next "
        "trading day, except 23:40–00:10) becomes a reservation order for the next session. "
        "KIS sends no notice when it executes one, so I check after the open and tell you."
    ),
    "afterhours.off": (
        "After-hours reservations off: alerts outside hours are refused with the reason."
    ),
    "afterhours.paper": (
        "Reservation orders exist in real trading only (KIS has no paper reservation orders). "
        "Switch with /mode, then turn this on again."
    ),
    "afterhours.state_on": "After-hours reservations: on. Turn off: /afterhours off",
    "afterhours.state_off": "After-hours reservations: off. Turn on: /afterhours reserve",
    "afterhours.usage": "Usage: /afterhours reserve or /afterhours off",
    "card.resv_placed": (
        "📅 Reservation order entered ({env})\n{subject}\nKIS sends it at the next open "
        "({opens}). KIS sends no notice when it executes it: I check after the open and tell "
        "you. To cancel: /orders"
    ),
    "card.resv_failed": "⚠️ Reservation order failed ({env})\n{subject}\nReason: {reason}",
    "card.resv_unknown": (
        "⚠️ No answer to the reservation order ({env})\n{subject}\nChecking KIS's reservation "
        "list for it; it is not sent again."
    ),
    "card.resv_executed": (
        "✅ Reservation order executed ({env})\n{subject}\norder {order_no} · filled {filled} sh"
        "{price}"
    ),
    "card.resv_rejected": (
        "⛔ Reservation order refused by KIS ({env})\n{subject}\nReason: {reason}"
    ),
    "card.resv_cancelled": "🗑 Reservation order cancelled ({env})\n{subject}",
    # --- /orders: open orders, cancels -----------------------------------------------
    "orders.open_mark": "⏳ ",
    "orders.partial_mark": "🔸 ",
    "orders.cancelled_mark": "🗑 ",
    "orders.open_hint": "⏳ unfilled · 🔸 partly filled: the buttons below cancel what is left.",
    "orders.reservations": "Reservation orders",
    "orders.reservation": "{date} {stock} {side} {quantity} sh {price} — {status}",
    "orders.cancel_button": "Cancel #{id} {symbol}",
    "orders.resv_cancel_button": "Cancel reservation #{id} {symbol}",
    "cancel.done": "🗑 KIS took the cancel: #{id} {stock}, {remaining} sh left open",
    "cancel.refused": "KIS refused the cancel (#{id}): {reason}",
    "cancel.unknown": "KIS did not answer; whether #{id} is cancelled is unknown. See /orders.",
    "cancel.already": "The cancel of #{id} was sent already.",
    "cancel.not_open": "Order #{id} is no longer open.",
    "cancel.failed": "Could not cancel #{id}: {reason}",
    "resv_status.pending": "checking",
    "resv_status.reserved": "reserved",
    "resv_status.unknown": "checking (no answer)",
    "resv_status.cancelling": "cancelling",
    # --- /close ---------------------------------------------------------------------
    "close.usage": "Usage: /close 005930, /close NASDAQ:AAPL or /close all",
    "close.ask": (
        "⚠️ Sell the whole holding at market? ({env})\n{lines}\n"
        "What can be sold is checked again when the order is placed. Risk limits and confirm "
        "mode do not apply, and it is placed even while alerts are paused."
    ),
    "close.line": "· {stock} {quantity} sh ({sellable} sh can be sold)",
    "close.button_sell": "✅ Sell",
    "close.button_cancel": "❌ Cancel",
    "close.not_held": "You hold no {symbol}.",
    "close.nothing": "No holdings to sell.",
    "close.sending": "Sending the sell orders: {count} stock(s). The order notices follow.",
    "close.already": "Sent already.",
    "close.dropped": "Dropped: nothing was ordered.",
    "close.bad_symbol": "Unknown stock: {detail}",
}

# Refusal reasons of the risk limits (the pipeline's `reason_key`s).
KO_REASONS: Final[dict[str, str]] = {
    "reason.limit_order": (
        "주문 금액 {amount}({quantity}주 × {price})이 1회 주문 한도({limit})를 넘습니다 "
        "(/limits)"
    ),
    "reason.limit_day": (
        "{market}에서 {amount}어치를 더 사면 하루 매수 한도({limit})를 넘습니다 "
        "(오늘 매수 {bought}) (/limits)"
    ),
    "reason.limit_orders": (
        "{market} 오늘 주문이 {used}건으로 하루 주문 수 한도 {orders}건에 닿았습니다 (/limits)"
    ),
    "reason.limit_unchecked": (
        "현재가를 몰라 위험 한도를 확인하지 못해 주문하지 않았습니다: {detail}"
    ),
}
EN_REASONS: Final[dict[str, str]] = {
    "reason.limit_order": (
        "the order's amount {amount} ({quantity} sh × {price}) is over your per-order limit "
        "of {limit} (/limits)"
    ),
    "reason.limit_day": (
        "buying {amount} more on {market} would pass your daily limit of {limit} "
        "({bought} bought today) (/limits)"
    ),
    "reason.limit_orders": (
        "{used} orders on {market} today: your limit of {orders} orders a day is reached "
        "(/limits)"
    ),
    "reason.limit_unchecked": (
        "the risk limits could not be checked without the current price; no order sent: "
        "{detail}"
    ),
}
