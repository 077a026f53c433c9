import logging

import pytest

from moahook.log import RedactingFilter, SecretRegistry, redact


def test_known_secret_shapes_are_redacted() -> None:
    text = (
        "POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe "
        'body={"appsecret": "abcdefghijklmnop", "access_token":"eyJ0eXAiOiJKV1Qi"} '
        "path=/hook/Zx9_abcdefghijklmnopqrs authorization: Bearer eyJhbGciOiJIUzI1"
    )
    out = redact(text)
    for secret in (
        "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        "abcdefghijklmnop",
        "eyJ0eXAiOiJKV1Qi",
        "Zx9_abcdefghijklmnopqrs",
        "eyJhbGciOiJIUzI1",
    ):
        assert secret not in out


def test_registered_values_are_redacted_from_args_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = SecretRegistry()
    registry.add("s3cr3t-app-secret-value")
    logger = logging.getLogger("moahook.test")
    logger.addFilter(RedactingFilter(registry))
    try:
        with caplog.at_level(logging.INFO, logger="moahook.test"):
            logger.info("value %s", "s3cr3t-app-secret-value")
            try:
                raise RuntimeError("boom s3cr3t-app-secret-value")
            except RuntimeError:
                logger.exception("failed")
    finally:
        logger.filters.clear()
    assert "s3cr3t-app-secret-value" not in caplog.text
    assert "****" in caplog.text


def test_fill_notice_key_and_iv_are_redacted_even_cut_short() -> None:
    whole = redact(
        '"output": {"iv": "Qw3rTy7uI0pAsDf1", "key": "Zx9cVb2nM4lKjH6gFdSaPoIuYtRe8WqE"}'
    )
    cut = redact('...WqE", "key": "Zx9cVb2nM4lKjH')
    for secret in ("Qw3rTy7uI0pAsDf1", "Zx9cVb2nM4lKjH6gFdSaPoIuYtRe8WqE", "Zx9cVb2nM4lKjH"):
        assert secret not in whole and secret not in cut
