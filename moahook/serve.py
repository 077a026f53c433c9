"""`moahook serve`: bot, web server and fill-notice watchers in one event loop."""

from __future__ import annotations

import sys

from moahook.settings import Settings

NO_TOKEN = (
    "moahook serve needs MOAHOOK_BOT_TOKEN: create a bot with @BotFather in Telegram "
    "(/newbot) and put its token in .env. To try moahook without one, run `make demo`."
)


def run_serve(settings: Settings) -> int:
    if settings.bot_token is None:
        print(f"moahook: {NO_TOKEN}", file=sys.stderr)
        return 2
    print("moahook serve: not built yet", file=sys.stderr)
    return 1
