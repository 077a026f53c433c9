"""The dashboard's second factor: a one-time code sent by the bot to the user's chat
(SPEC section 6). Asking for it and checking it are one function each, so another
factor (an authenticator app) slots in here and nowhere else."""

from __future__ import annotations

from typing import Final

from storage.records import UserRecord, VerifyOutcome
from webhook_server.dashboard.http import ApiError
from webhook_server.dashboard.limits import spend
from webhook_server.dashboard.ports import DashboardDeps

# Purposes of their own: a code asked for on the dashboard never confirms a chat flow.
PURPOSE_SIGNIN: Final = "web_signin"
PURPOSE_KEYS: Final = "web_keys"
PURPOSE_REAL: Final = "web_real"
PURPOSE_ROTATE: Final = "web_rotate"
PURPOSES: Final = (PURPOSE_SIGNIN, PURPOSE_KEYS, PURPOSE_REAL, PURPOSE_ROTATE)


async def request_second_factor(deps: DashboardDeps, user: UserRecord, purpose: str) -> None:
    """Issue a code for `purpose` and send it to the user's chat; 429 past the user's
    limit of codes, 502 if Telegram refuses."""
    await spend(deps.storage.rate_buckets, "codes", str(user.id), deps.limits.codes_per_user)
    code = await deps.storage.two_factor.issue(user.id, purpose)
    if not await deps.send_code(user, purpose, code):
        raise ApiError(502, "delivery", "the code could not be sent to your Telegram chat")


def is_code(value: str) -> bool:
    return len(value) == 6 and value.isdigit()


async def check_second_factor(
    deps: DashboardDeps, user: UserRecord, purpose: str, code: str
) -> None:
    """Passes only for the right code; otherwise 400/401 saying what happened."""
    if not is_code(code):
        raise ApiError(400, "bad_field", "code: 6 digits are expected", field="code")
    result = await deps.storage.two_factor.verify(user.id, purpose, code)
    if result.ok:
        return
    if result.outcome is VerifyOutcome.WRONG:
        raise ApiError(401, "wrong_code", "wrong code", tries_left=result.tries_left)
    if result.outcome is VerifyOutcome.EXPIRED:
        raise ApiError(401, "code_expired", "the code has expired: ask for a new one")
    raise ApiError(401, "code_void", "no open code (used, void or never sent): ask for a new one")
