"""The sentences of several accounts per user (SPEC section 16), in Korean and English.

Merged into `bot.texts` catalogs; the same rules apply (plain text, `str.format` names,
both catalogs with the same keys and placeholders).
"""

from __future__ import annotations

from typing import Final

KO: Final[dict[str, str]] = {
    "alert_status.fanned_out": "계좌별로 나눔",
    "reason.unknown_account": "'{account}' 계좌가 없습니다 (/accounts)",
    # /keys: which account
    "keys.ask_name": (
        "어느 계좌의 키인가요? 짧은 이름을 보내거나 아래에서 고르세요 "
        "(영문·숫자·-·_ 16자까지, 예: main, isa)."
    ),
    "keys.first_account": (
        "계좌 {account}의 키를 등록합니다 (다른 이름으로 하려면 App Key 대신 이름을 보내거나 "
        "/keys 이름)."
    ),
    "keys.summary_account": "계좌 이름: {name}",
    "keys.bad_name": "쓸 수 없는 이름입니다: {reason}. 다시 보내 주세요.",
    "keys.for_account": "계좌 {account}의 키를 등록합니다.",
    "keys.key_as_name": (
        "App Key로 보고 계좌 {account}에 등록합니다 (다른 계좌라면 /cancel 후 /keys 이름)."
    ),
    "keys.saved_for": "계좌 {account}: 키를 암호화해 저장했습니다. KIS로 점검합니다…",
    # /accounts
    "tfa.action_account_delete": "계좌와 그 키 삭제",
    "commands.accounts": "계좌 목록·기본 계좌·이름·삭제",
    "accounts.title": "계좌 {count}개 (⭐ 기본 계좌: 알림에 account가 없을 때)",
    "accounts.line": "{star} {name} — {env} · {keys}{number}",
    "accounts.number": " · {number}",
    "accounts.default_button": "⭐ {name}을 기본으로",
    "accounts.usage": (
        "/accounts — 목록\n"
        "/accounts default 이름 — 기본 계좌 바꾸기\n"
        "/accounts rename 이름 새이름 — 이름 바꾸기\n"
        "/accounts delete 이름 — 계좌와 그 키 지우기 (2FA)\n"
        "새 계좌: /keys 이름\n"
        "알림에서: \"account\": \"isa\", \"main,isa\" 또는 \"all\""
    ),
    "accounts.unknown": "'{name}' 계좌가 없습니다. 목록: /accounts",
    "accounts.bad_name": "쓸 수 없는 이름입니다: {reason}",
    "accounts.taken": "'{name}' 이름의 계좌가 이미 있습니다.",
    "accounts.default_set": "기본 계좌: {name} ({env}). account가 없는 알림은 이 계좌로 갑니다.",
    "accounts.already_default": "{name}은 이미 기본 계좌입니다.",
    "accounts.renamed": "{old} → {new}. 알림의 account도 새 이름으로 바꾸세요.",
    "accounts.delete_last": (
        "하나뿐인 계좌는 지울 수 없습니다. 키를 지우려면 /delete 를 쓰세요."
    ),
    "accounts.delete_code": "계좌 {name}와 그 키를 지우려면 코드를 보내 주세요.",
    "accounts.deleted": "계좌 {name}와 그 키를 지웠습니다. 주문 기록은 남습니다.",
    "accounts.deleted_default": "새 기본 계좌: {name}.",
    "accounts.gone": "그 계좌는 이미 없습니다.",
    # /mode, /status, /orders, /log, /balance with several accounts
    "mode.account_show": "계좌 {name}: {env}\n모의투자 키: {paper}\n실전투자 키: {real}",
    "mode.account_switched": "계좌 {name}: 환경을 {env:으로/로} 바꿨습니다.",
    "mode.account_already": "계좌 {name}은 이미 {env}입니다.",
    "status.account": "— 계좌 {name}{star} —",
    "status.recheck_account": "다시 점검 {name}",
    "account.prefix": "[{account}] ",
    "balance.account": "— 계좌 {name} —",
}

EN: Final[dict[str, str]] = {
    "alert_status.fanned_out": "split by account",
    "reason.unknown_account": "no account named '{account}' (/accounts)",
    "keys.ask_name": (
        "Which account are these keys for? Send a short name or pick one below "
        "(letters, digits, - and _, up to 16; e.g. main, isa)."
    ),
    "keys.first_account": (
        "Keys for account {account} (to name it otherwise, send the name instead of the "
        "App Key, or /keys NAME)."
    ),
    "keys.summary_account": "Account name: {name}",
    "keys.bad_name": "That name cannot be used: {reason}. Send another.",
    "keys.for_account": "Keys for account {account}.",
    "keys.key_as_name": (
        "Taken as the App Key, for account {account} (another account: /cancel, then "
        "/keys name)."
    ),
    "keys.saved_for": "Account {account}: keys saved, encrypted. Checking them with KIS…",
    "tfa.action_account_delete": "Delete an account and its keys",
    "commands.accounts": "Accounts: list, default, rename, delete",
    "accounts.title": "{count} accounts (⭐ the default: alerts without \"account\" go there)",
    "accounts.line": "{star} {name} — {env} · {keys}{number}",
    "accounts.number": " · {number}",
    "accounts.default_button": "⭐ Make {name} the default",
    "accounts.usage": (
        "/accounts — the list\n"
        "/accounts default NAME — change the default account\n"
        "/accounts rename NAME NEW — rename one\n"
        "/accounts delete NAME — delete one and its keys (2FA)\n"
        "A new account: /keys NAME\n"
        "In an alert: \"account\": \"isa\", \"main,isa\" or \"all\""
    ),
    "accounts.unknown": "No account named '{name}'. The list: /accounts",
    "accounts.bad_name": "That name cannot be used: {reason}",
    "accounts.taken": "An account named '{name}' exists already.",
    "accounts.default_set": (
        "Default account: {name} ({env}). Alerts without \"account\" go to it."
    ),
    "accounts.already_default": "{name} is the default already.",
    "accounts.renamed": "{old} → {new}. Use the new name in your alerts' \"account\" too.",
    "accounts.delete_last": "The only account cannot be deleted. To forget its keys: /delete",
    "accounts.delete_code": "To delete account {name} and its keys, send the code.",
    "accounts.deleted": "Account {name} and its keys are deleted. Its order history stays.",
    "accounts.deleted_default": "The new default account: {name}.",
    "accounts.gone": "That account does not exist any more.",
    "mode.account_show": "Account {name}: {env}\nPaper keys: {paper}\nReal keys: {real}",
    "mode.account_switched": "Account {name}: switched to {env}.",
    "mode.account_already": "Account {name} is on {env} already.",
    "status.account": "— account {name}{star} —",
    "status.recheck_account": "Re-check {name}",
    "account.prefix": "[{account}] ",
    "balance.account": "— account {name} —",
}
