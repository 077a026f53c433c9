"""`GET /app`: the page (server-rendered with Jinja2) and its static files.

Every file is shipped in the package. The page runs no inline script: its JavaScript
is `static/app.js`, its settings and both text catalogues a JSON data block.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import aiohttp_jinja2
import jinja2
from aiohttp import web

from webhook_server.dashboard.i18n import CATALOGS, Lang, lang_from_accept, parse_lang

HERE: Final = Path(__file__).resolve().parent
STATIC_DIR: Final = HERE / "static"
STATIC_TYPES: Final = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
JINJA_KEY: Final = web.AppKey("moahook.dashboard.jinja", jinja2.Environment)


def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("webhook_server.dashboard", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        app_key=JINJA_KEY,
    )


def page_lang(request: web.Request) -> Lang:
    return parse_lang(request.query.get("lang")) or lang_from_accept(
        request.headers.get("Accept-Language")
    )


def script_json(value: object) -> str:
    """JSON safe inside a `<script type="application/json">` block."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


async def index(request: web.Request) -> web.StreamResponse:
    lang = page_lang(request)
    config = {"lang": lang, "texts": CATALOGS, "api": "/app/api"}
    response = aiohttp_jinja2.render_template(
        "index.html", request,
        {"lang": lang, "t": CATALOGS[lang], "config": script_json(config)},
        app_key=JINJA_KEY,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = STATIC_DIR / name
    content_type = STATIC_TYPES.get(path.suffix)
    # Names are one path segment (the route allows no '/'); only shipped kinds are served.
    if content_type is None or not path.is_file() or path.parent != STATIC_DIR:
        raise web.HTTPNotFound()
    response = web.FileResponse(path, headers={"Content-Type": content_type})
    response.headers["Cache-Control"] = "no-cache"
    return response
