"""Log lines: ISO 8601 times with the zone, text and JSON, the ids of an alert's path,
and secret redaction on both formats."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from moahook.log import SecretRegistry, make_handler
from webhook_server.log_context import alert_context, detached, set_alert_context

SECRET = "s3cr3t-app-secret-value"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, dict[str, io.StringIO]]]:
    registry = SecretRegistry()
    registry.add(SECRET)
    streams = {"text": io.StringIO(), "json": io.StringIO()}
    log = logging.getLogger("moahook.test.format")
    log.propagate = False
    log.setLevel(logging.INFO)
    handlers = [make_handler(registry, fmt, stream) for fmt, stream in streams.items()]  # type: ignore[arg-type]
    for handler in handlers:
        log.addHandler(handler)
    try:
        yield log, streams
    finally:
        for handler in handlers:
            log.removeHandler(handler)
        log.propagate = True


def test_text_lines_start_with_an_iso_time_with_its_zone(logger: tuple) -> None:  # type: ignore[type-arg]
    log, streams = logger
    log.info("hello %s", "there")
    line = streams["text"].getvalue().splitlines()[0]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO moahook\.test\.format: hello there", line
    ), line


def test_json_lines_are_one_object_each(logger: tuple) -> None:  # type: ignore[type-arg]
    log, streams = logger
    log.warning("first")
    log.info("second")
    entries = [json.loads(line) for line in streams["json"].getvalue().splitlines()]
    assert [e["message"] for e in entries] == ["first", "second"]
    assert entries[0]["level"] == "WARNING" and entries[0]["logger"] == "moahook.test.format"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entries[0]["time"])
    assert "user_id" not in entries[0]


def test_the_ids_of_an_alert_path_are_on_every_line(logger: tuple) -> None:  # type: ignore[type-arg]
    log, streams = logger
    with alert_context(5, 12):
        log.info("sizing")
        with detached():
            log.info("worker")
    log.info("outside")
    text = streams["text"].getvalue().splitlines()
    assert text[0].endswith("sizing [user=5 alert=12]")
    assert text[1].endswith("worker") and text[2].endswith("outside")
    entries = [json.loads(line) for line in streams["json"].getvalue().splitlines()]
    assert (entries[0]["user_id"], entries[0]["alert_id"]) == (5, 12)
    assert "user_id" not in entries[2]


async def test_a_request_learns_its_ids_step_by_step(logger: tuple) -> None:  # type: ignore[type-arg]
    import asyncio

    log, streams = logger

    async def request() -> None:
        set_alert_context(7)
        log.info("user known")
        set_alert_context(alert_id=99)
        log.info("stored")

    await asyncio.create_task(request())
    log.info("after")  # the request's task kept its ids to itself
    text = streams["text"].getvalue().splitlines()
    assert text[0].endswith("[user=7]") and text[1].endswith("[user=7 alert=99]")
    assert text[2].endswith("after")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_redacted_in_both_formats(logger: tuple, fmt: str) -> None:  # type: ignore[type-arg]
    log, streams = logger
    log.info("value %s token %s", SECRET, BOT_TOKEN)
    try:
        raise RuntimeError(f"boom {SECRET} https://api.telegram.org/bot{BOT_TOKEN}/getMe")
    except RuntimeError:
        log.exception("failed")
    output = streams[fmt].getvalue()
    assert SECRET not in output
    assert BOT_TOKEN.split(":")[1] not in output
    assert "****" in output and "RuntimeError" in output


def test_the_instance_is_named_on_every_line_when_set() -> None:
    text, as_json = io.StringIO(), io.StringIO()
    log = logging.getLogger("moahook.test.instance")
    log.propagate = False
    log.setLevel(logging.INFO)
    handlers = [make_handler(None, "text", text, instance="web-2"),
                make_handler(None, "json", as_json, instance="web-2")]
    for handler in handlers:
        log.addHandler(handler)
    try:
        with alert_context(5, 12):
            log.info("placed")
    finally:
        for handler in handlers:
            log.removeHandler(handler)
    assert re.fullmatch(
        r"\S+Z INFO \[web-2\] moahook\.test\.instance: placed \[user=5 alert=12\]",
        text.getvalue().strip(),
    ), text.getvalue()
    entry = json.loads(as_json.getvalue())
    assert entry["instance"] == "web-2" and entry["message"] == "placed"
