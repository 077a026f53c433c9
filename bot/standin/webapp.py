"""Mini App launch data as Telegram builds it, for the demo and tests: what a Telegram
client passes to a Web App it opens (`initData`, in the URL fragment as `tgWebAppData`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import quote, urlencode


def init_data(
    bot_token: str,
    user: dict[str, object] | None,
    *,
    auth_date: int | None = None,
    query_id: str = "AAHdF6IQAAAAAN0XohDhrOrc",
) -> str:
    """The fields URL-encoded, with `hash` = hex HMAC-SHA-256 of the sorted `key=value`
    lines under the key HMAC-SHA-256(key="WebAppData", message=bot token)."""
    values: dict[str, str] = {
        "query_id": query_id,
        "auth_date": str(auth_date if auth_date is not None else int(time.time())),
    }
    if user is not None:
        values["user"] = json.dumps(user, ensure_ascii=False, separators=(",", ":"))
    check = "\n".join(f"{key}={values[key]}" for key in sorted(values))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    values["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(values)


def web_app_user(
    user_id: int, first_name: str, *, username: str | None = None, language_code: str = "ko"
) -> dict[str, object]:
    user: dict[str, object] = {
        "id": user_id, "first_name": first_name, "language_code": language_code,
        "allows_write_to_pm": True,
    }
    if username:
        user["username"] = username
    return user


def launch_url(app_url: str, data: str, platform: str = "tdesktop") -> str:
    """The URL a Telegram client opens: the page, initData in the fragment."""
    return f"{app_url}#tgWebAppData={quote(data)}&tgWebAppVersion=8.0&tgWebAppPlatform={platform}"
