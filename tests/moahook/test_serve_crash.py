"""A crash escaping the event loop is logged through the redacting filter, not printed raw."""

from __future__ import annotations

import logging

import pytest

import moahook.serve as serve_module
from moahook.log import RedactingFilter
from moahook.settings import Settings

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawX"


def test_unexpected_crash_is_logged_redacted_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def crash(settings: Settings, registry: object) -> int:
        raise RuntimeError(f"startup failed at https://api.telegram.org/bot{TOKEN}/getMe")

    monkeypatch.setattr(serve_module, "serve", crash)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        code = serve_module.run_serve(Settings.from_mapping({"MOAHOOK_BOT_TOKEN": TOKEN}))
        assert any(
            isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters
        )
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert code == 1
    assert "startup failed" in err
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawX" not in err
