from pathlib import Path

import pytest

from kis.env import Environment
from moahook.settings import Settings, SettingsError, parse_dotenv
from storage.crypto import encode_master_key


def test_defaults_follow_the_spec() -> None:
    s = Settings.from_mapping({})
    assert s.host == "0.0.0.0"
    assert s.port == 8080
    assert s.public_url == "http://localhost:8080"
    assert s.database_url == "sqlite+aiosqlite:///data/moahook.db"
    assert s.kis.rest_url(Environment.PAPER) == "https://openapivts.koreainvestment.com:29443"
    assert s.kis.ws_url(Environment.REAL) == "ws://ops.koreainvestment.com:21000/tryitout"
    assert s.market_hours_enforced
    assert s.master_keys == ()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MOAHOOK_PORT", "80a"),
        ("MOAHOOK_PORT", "70000"),
        ("MOAHOOK_KIS_REAL_URL", "openapi.koreainvestment.com"),
        ("MOAHOOK_KIS_PAPER_WS_URL", "http://x:1"),
        ("MOAHOOK_PUBLIC_URL", "ftp://x"),
        ("MOAHOOK_MASTER_KEY", "short"),
        ("MOAHOOK_TRUSTED_IPS", "1.2.3.4,not-an-ip"),
        ("MOAHOOK_MARKET_HOURS", "sometimes"),
        ("MOAHOOK_DATABASE_URL", "mysql://x/y"),
        ("MOAHOOK_BOT_TOKEN", "nocolon"),
        ("MOAHOOK_LOG_LEVEL", "LOUD"),
        ("MOAHOOK_LEASE_SECONDS", "ten"),
        ("MOAHOOK_LEASE_SECONDS", "0.5"),
        ("MOAHOOK_LEASE_SECONDS", "-3"),
        ("MOAHOOK_INSTANCE_NAME", "web 1"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_mapping({name: value})
    message = str(info.value)
    assert message.startswith(name + ":")
    assert "\n" not in message


def test_master_keys_rotate_in_order() -> None:
    k1, k2 = bytes(range(32)), bytes(reversed(range(32)))
    s = Settings.from_mapping(
        {"MOAHOOK_MASTER_KEY": f"{encode_master_key(k1)}, {encode_master_key(k2)}"}
    )
    assert s.master_keys == (k1, k2)


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text('# comment\nexport MOAHOOK_PORT="9000"\nMOAHOOK_HOST=127.0.0.1\n')
    s = Settings.load({"MOAHOOK_HOST": "::1"}, dotenv)
    assert s.port == 9000
    assert s.host == "::1"
    assert parse_dotenv("A='b c'\nnoequals\n") == {"A": "b c"}


def test_repr_hides_the_bot_token_and_db_password() -> None:
    s = Settings.from_mapping(
        {
            "MOAHOOK_BOT_TOKEN": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi",
            "MOAHOOK_DATABASE_URL": "postgresql+asyncpg://u:hunter2pw@db/x",
        }
    )
    text = repr(s)
    assert "ABCDEFGHIJ" not in text
    assert "hunter2pw" not in text


def test_fill_notice_wait_is_seconds_from_zero() -> None:
    assert Settings.from_mapping({}).fill_notice_wait == 5.0
    assert Settings.from_mapping({"MOAHOOK_FILL_NOTICE_WAIT": "0"}).fill_notice_wait == 0.0
    assert Settings.from_mapping({"MOAHOOK_FILL_NOTICE_WAIT": "2.5"}).fill_notice_wait == 2.5
    for bad in ("-1", "soon", "601", "８"):
        with pytest.raises(SettingsError, match="MOAHOOK_FILL_NOTICE_WAIT"):
            Settings.from_mapping({"MOAHOOK_FILL_NOTICE_WAIT": bad})
