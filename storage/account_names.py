"""Account names (SPEC section 16): short, case-insensitive, safe in an alert message.

A name is 1-16 ASCII letters, digits, `-` or `_`, starting with a letter or a digit,
stored lowercase. `all` is not a name: in an alert it means every account. The first
account is `main`.
"""

from __future__ import annotations

import re
from typing import Final

MAX_NAME_CHARS: Final = 16
ALL_ACCOUNTS: Final = "all"
FIRST_ACCOUNT: Final = "main"
_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]*")


class AccountNameError(ValueError):
    """A name that cannot be an account's (the message says why, quoting it clipped)."""


def normalize_account_name(text: str) -> str:
    """`ISA ` → `isa`; raises `AccountNameError` saying what is wrong."""
    name = text.strip().lower()
    shown = name if len(name) <= 24 else name[:24] + "…"
    if not name:
        raise AccountNameError("an account name cannot be empty")
    if len(name) > MAX_NAME_CHARS:
        raise AccountNameError(
            f"account name {shown!r} is longer than {MAX_NAME_CHARS} characters"
        )
    if not _NAME.fullmatch(name):
        raise AccountNameError(
            f"account name {shown!r} may use only letters a-z, digits, '-' and '_', "
            "and must start with a letter or a digit"
        )
    if name == ALL_ACCOUNTS:
        raise AccountNameError("'all' means every account; it cannot be an account's name")
    return name
