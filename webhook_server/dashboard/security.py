"""Headers on every `/app` response: a strict Content-Security-Policy and friends."""

from __future__ import annotations

from typing import Final

from aiohttp import web

TELEGRAM_SCRIPT: Final = "https://telegram.org/js/telegram-web-app.js"

# No inline script or style anywhere; the one outside script is Telegram's own.
# frame-ancestors: Telegram Web shows Mini Apps in a frame; nobody else may frame it.
CSP: Final = "; ".join((
    "default-src 'none'",
    f"script-src 'self' {TELEGRAM_SCRIPT}",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'self' https://web.telegram.org",
))

HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def is_dashboard_path(path: str) -> bool:
    return path == "/app" or path.startswith("/app/")


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if is_dashboard_path(request.path):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
