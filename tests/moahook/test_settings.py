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


def test_a_comment_after_a_quoted_value_in_dotenv_is_a_comment(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        'MOAHOOK_PUBLIC_URL="https://hooks.example.com"  # where TradingView posts\n'
        "MOAHOOK_PORT='9000' # behind the proxy\n"
        "MOAHOOK_HOST=127.0.0.1 # local only\n"
    )
    s = Settings.load({}, dotenv)
    assert s.public_url == "https://hooks.example.com"
    assert s.port == 9000
    assert s.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("wrong", "meant"),
    [
        ("MOAHOOK_PROT", "MOAHOOK_PORT"),
        ("MOAHOOK_BOTTOKEN", "MOAHOOK_BOT_TOKEN"),
        ("MOAHOOK_DATABASE_ULR", "MOAHOOK_DATABASE_URL"),
        ("MOAHOOK_LOGLEVEL", "MOAHOOK_LOG_LEVEL"),
    ],
)
def test_a_misspelled_variable_is_reported_with_the_likely_one(wrong: str, meant: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_mapping({wrong: "9000"})
    assert info.value.problems == [f"{wrong}: not a moahook setting (did you mean {meant}?)"]


def test_variables_of_the_test_suite_are_not_misspellings() -> None:
    Settings.from_mapping({"MOAHOOK_TEST_DATABASE_URL": "postgresql+asyncpg://x/y"})


def test_every_problem_is_reported_at_once_one_line_each() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_mapping({
            "MOAHOOK_PORT": "eighty",
            "MOAHOOK_PUBLIC_URL": "ftp://x",
            "MOAHOOK_BOT_TOKEN": "secret-value-without-colon",
            "MOAHOOK_PROT": "9000",
        })
    problems = info.value.problems
    assert len(problems) == 4
    assert sorted(p.split(":")[0] for p in problems) == [
        "MOAHOOK_BOT_TOKEN", "MOAHOOK_PORT", "MOAHOOK_PROT", "MOAHOOK_PUBLIC_URL",
    ]
    assert all("\n" not in p for p in problems)
    assert "secret-value-without-colon" not in str(info.value)  # a token is never echoed


# SPEC section 3 (contract): these names and defaults, exactly.
SPEC_DEFAULTS = {
    "MOAHOOK_BOT_TOKEN": "—",
    "MOAHOOK_TELEGRAM_API_URL": "Telegram's public Bot API",
    "MOAHOOK_HOST": "0.0.0.0",
    "MOAHOOK_PORT": "8080",
    "MOAHOOK_PUBLIC_URL": "http://localhost:8080",
    "MOAHOOK_DATABASE_URL": "sqlite+aiosqlite:///<data dir>/moahook.db",
    "MOAHOOK_DATA_DIR": "./data",
    "MOAHOOK_KIS_REAL_URL": "https://openapi.koreainvestment.com:9443",
    "MOAHOOK_KIS_PAPER_URL": "https://openapivts.koreainvestment.com:29443",
    "MOAHOOK_KIS_REAL_WS_URL": "ws://ops.koreainvestment.com:21000",
    "MOAHOOK_KIS_PAPER_WS_URL": "ws://ops.koreainvestment.com:31000",
    "MOAHOOK_MARKET_HOURS": "krx",
    "MOAHOOK_LOG_LEVEL": "INFO",
}


def test_serve_help_lists_every_variable_with_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from moahook.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    shown = {v.name: v.default for v in Settings.variables()}
    for variable in Settings.variables():
        assert variable.name in out
        assert f"default: {variable.default}" in out
    for name, default in SPEC_DEFAULTS.items():
        assert shown[name] == default, name
    for name in ("MOAHOOK_TELEGRAM_WEBHOOK_URL", "MOAHOOK_MASTER_KEY", "MOAHOOK_TRUSTED_IPS"):
        assert name in shown


def test_defaults_are_the_values_used() -> None:
    s = Settings.from_mapping({"MOAHOOK_DATA_DIR": "/srv/moahook"})
    assert s.database_url == "sqlite+aiosqlite:////srv/moahook/moahook.db"
    assert s.public_url_is_default
    assert not Settings.from_mapping({"MOAHOOK_PUBLIC_URL": "https://x.example"}).public_url_is_default


def test_serve_reports_every_configuration_error_on_its_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from moahook.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MOAHOOK_PROT=9000 # typo\n")
    monkeypatch.setenv("MOAHOOK_PORT", "x")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "moahook: configuration error: MOAHOOK_PORT: 'x' is not a port number (1-65535)",
        "moahook: configuration error: MOAHOOK_PROT: not a moahook setting "
        "(did you mean MOAHOOK_PORT?)",
    ]
