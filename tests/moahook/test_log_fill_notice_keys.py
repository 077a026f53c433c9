"""The fill-notice subscription's AES key and iv never reach the log, even at DEBUG,
where the WebSocket library writes the frames it receives."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import pytest

from kis.client import KisClient
from kis.env import TR_IDS, Endpoints, Environment
from kis.models import AppCredentials
from kis.secret import Secret
from kis.sim import KisSimulator, demo_account
from kis.tokenstore import MemoryTokenStore
from kis.ws import FillNoticeConnection
from moahook.log import setup_logging


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup_logging("DEBUG")
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


async def test_aes_key_and_iv_are_redacted_at_debug(debug_log: io.StringIO) -> None:
    account = demo_account()
    creds = AppCredentials(account.app_key, Secret(account.app_secret), Environment.PAPER)
    async with KisSimulator([account]) as sim, httpx.AsyncClient() as http:
        kis = KisClient(endpoints=Endpoints(rest={Environment.PAPER: sim.rest_url(
            Environment.PAPER)}, ws={}), http=http, token_store=MemoryTokenStore())

        async def approval() -> Secret:
            return await kis.approval_key(creds)

        connection = FillNoticeConnection(
            url=sim.ws_url(Environment.PAPER) + "/tryitout",
            tr_id=TR_IDS[Environment.PAPER].fill_notice, hts_id=account.hts_id,
            approval_key=approval, on_notice=_ignore,
        )
        connection.start()
        try:
            assert (await connection.wait_ready(5.0)).ready
            [(key, iv)] = [
                pair for session in sim.ws._sessions for pair in session.subscriptions.values()
            ]
        finally:
            await connection.stop()
    text = debug_log.getvalue()
    assert "DEBUG" in text, "the DEBUG log was captured"
    for secret in (key, iv):
        for start in range(len(secret) - 5):
            assert secret[start:start + 6] not in text, "part of the key or iv was logged"


async def _ignore(notice: object) -> None:
    return None
