"""A local stand-in for the Telegram Bot API (demo and end-to-end tests)."""

from bot.standin.model import ApiCall, ChatMessage, WebhookDelivery
from bot.standin.server import BotApiStandIn
from bot.standin.transcript import render_transcript
from bot.standin.user import SimUser

__all__ = [
    "ApiCall",
    "BotApiStandIn",
    "ChatMessage",
    "SimUser",
    "WebhookDelivery",
    "render_transcript",
]
