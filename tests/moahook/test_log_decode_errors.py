"""aiogram's ClientDecodeError carries the raw Bot API answer (users' messages, hence
App Secrets, App Keys and 2FA codes); its logged form must not."""

import json
import logging

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import ClientDecodeError
from aiogram.methods import GetUpdates

from moahook.log import RedactingFilter, SecretRegistry

APP_SECRET = "Qk9mT2x0c1RyZWFtUGxhY2Vob2xkZXJTZWNyZXRWYWx1ZUZvclRlc3Rz" * 3
BAD_FIELD = "kY7pXq2Lm9Zr4Tb8Nc1Vd6Hs3Jf5Gw0Ae7Uo2Ii9Pp4Ll8Kk"


def _decode_error() -> ClientDecodeError:
    """What polling raises when a getUpdates answer does not validate."""
    answer = {
        "ok": True,
        "result": [
            {
                "update_id": 7,
                "message": {
                    "message_id": 1, "date": 1, "chat": {"id": 5, "type": "private"},
                    "text": APP_SECRET,
                },
            },
            {"update_id": 8, "message": {"message_id": BAD_FIELD, "date": 1,
                                         "chat": {"id": 5, "type": "private"}}},
        ],
    }
    bot = Bot("123456789:" + "A" * 35, session=AiohttpSession())
    with pytest.raises(ClientDecodeError) as caught:
        bot.session.check_response(bot, GetUpdates(), 200, json.dumps(answer))
    return caught.value


def test_decode_error_content_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    error = _decode_error()
    assert APP_SECRET in str(error)  # the library's message does carry it
    logger = logging.getLogger("moahook.test.decode")
    logger.addFilter(RedactingFilter(SecretRegistry()))
    try:
        with caplog.at_level(logging.INFO, logger="moahook.test.decode"):
            # As aiogram's dispatcher logs a failed getUpdates, and a failed handler.
            logger.error("Failed to fetch updates - %s: %s", type(error).__name__, error)
            try:
                raise error
            except ClientDecodeError:
                logger.exception("Cause exception while process update id=%d", 7)
    finally:
        logger.filters.clear()
    assert "ClientDecodeError" in caplog.text
    assert APP_SECRET[:20] not in caplog.text
    assert BAD_FIELD[:12] not in caplog.text
