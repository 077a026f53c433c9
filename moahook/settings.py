"""The one settings object, built from `MOAHOOK_*` variables and `.env` (pydantic-settings).

Adding a variable is one field on `Settings`, e.g.

    lease_seconds: Annotated[float, _parsed(_seconds)] = _doc(
        "how long a dead instance keeps its leases", 10.0, "10"
    )

(its type with the parser of its text, then meaning, default and — optionally — the
default as `--help` shows it). The variable's name (`MOAHOOK_` + the field name in
capitals), its validation and error line, `moahook serve --help` and the "did you
mean" check of misspelled names all follow from the field.

Every problem is reported at once, one line each, naming the variable; a bad value
never echoes a secret back.
"""

from __future__ import annotations

import difflib
import io
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import BeforeValidator, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from kis.env import DEFAULT_REST_URLS, DEFAULT_WS_URLS, Endpoints, Environment
from kis.markets.us import DEFAULT_SLIPPAGE, parse_slippage
from kis.secret import Secret
from storage.crypto import decode_master_key
from storage.db import default_database_url

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
PREFIX: Final = "MOAHOOK_"
# Read by the test suite and benchmarks, not by the service: never "misspelled".
_RESERVED_PREFIXES: Final = ("MOAHOOK_TEST_", "MOAHOOK_BENCH_")
_T = TypeVar("_T")


class SettingsError(ValueError):
    """Configuration is unusable; one line per problem, each naming its variable."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class _Problem(ValueError):
    """A value's problem, worded to follow `NAME: `."""


def parse_dotenv(text: str) -> dict[str, str]:
    """`KEY=value` lines as python-dotenv reads them (quotes, `export `, comments — also
    after a quoted value)."""
    values = dotenv_values(stream=io.StringIO(text))
    return {name: value for name, value in values.items() if value is not None}


# --- value parsers (each raises _Problem with the text after "NAME: ") ------------------


def _parsed(parse: Callable[[str], _T]) -> BeforeValidator:
    def run(value: object) -> object:
        if not isinstance(value, str):
            return value  # a default, already typed
        return parse(value.strip())

    return BeforeValidator(run)


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            shown = " or ".join(s + "://" for s in schemes)
            raise _Problem(f"{value!r} is not a URL ({shown}host)")
        try:
            _ = parts.port
        except ValueError:
            raise _Problem(f"{value!r} has an invalid port") from None
        return value.rstrip("/")

    return parse


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise _Problem(f"{value!r} is not a port number (1-65535)")
    return int(value)


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise _Problem(f"{value!r} is not a positive number of seconds")
    return number


def _wait_seconds(value: str) -> float:
    """0 or more seconds (0 turns the wait off)."""
    try:
        number = float(value) if value.isascii() else -1.0
    except ValueError:
        number = -1.0
    if not 0 <= number <= 600:
        raise _Problem(f"{value!r} is not a number of seconds from 0 to 600")
    return number


MIN_LEASE_SECONDS: Final = 2.0
MAX_LEASE_SECONDS: Final = 300.0


def _lease_seconds(value: str) -> float:
    try:
        number = float(value) if value.isascii() else -1.0
    except ValueError:
        number = -1.0
    if not MIN_LEASE_SECONDS <= number <= MAX_LEASE_SECONDS:
        raise _Problem(
            f"{value!r} is not a number of seconds between {MIN_LEASE_SECONDS:g} and "
            f"{MAX_LEASE_SECONDS:g}"
        )
    return number


def _instance_name(value: str) -> str:
    if len(value) > 64 or not all(c.isascii() and (c.isalnum() or c in "-_.:") for c in value):
        raise _Problem(f"{value!r} must be at most 64 letters, digits or - _ . :")
    return value


def _slippage(value: str) -> Decimal:
    try:
        return parse_slippage(value)
    except ValueError as exc:
        raise _Problem(str(exc)) from None


def _choice(*allowed: str, upper: bool = False) -> Callable[[str], str]:
    def parse(value: str) -> str:
        value = value.upper() if upper else value.lower()
        if value not in allowed:
            raise _Problem(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return parse


def _networks(value: str) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise _Problem(f"{item!r} is not an IP address or CIDR range") from None
    return tuple(networks)


def _master_keys(value: str) -> tuple[bytes, ...]:
    keys: list[bytes] = []
    for position, item in enumerate(value.split(","), start=1):
        if not item.strip():
            continue
        try:
            keys.append(decode_master_key(item))
        except ValueError as exc:
            raise _Problem(f"key #{position} {exc} (make one with `moahook gen-key`)") from None
    return tuple(keys)


def _bot_token(value: str) -> Secret:
    if ":" not in value or not value.split(":")[0]:
        # Never echo it: it may be a real token pasted with a typo.
        raise _Problem("not a Telegram bot token (expected '<digits>:<secret>' from @BotFather)")
    return Secret(value)


def _database_url(value: str) -> str:
    scheme = urlsplit(value).scheme
    if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise _Problem(
            f"scheme {scheme or '(none)'!r} is not supported "
            "(use sqlite+aiosqlite:/// or postgresql+asyncpg://)"
        )
    return value


def _doc(meaning: str, default: object, shown: str | None = None, *, secret: bool = False) -> Any:
    return Field(
        default=default,
        description=meaning,
        json_schema_extra={"default_text": shown, "secret": secret},
    )


# --- the settings ---------------------------------------------------------------------------

HttpUrl = Annotated[str, _parsed(_url("http", "https"))]
OptionalHttpUrl = Annotated[str | None, _parsed(_url("http", "https"))]
WsUrl = Annotated[str, _parsed(_url("ws", "wss"))]
OptionalSecret = Annotated[Secret | None, _parsed(Secret)]
Networks = Annotated[tuple[IPNetwork, ...], _parsed(_networks)]


class Settings(BaseSettings):
    """`MOAHOOK_<FIELD>` for each field; read only from what `load`/`from_mapping` pass."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        arbitrary_types_allowed=True,
        validate_default=False,
    )

    bot_token: Annotated[Secret | None, _parsed(_bot_token)] = _doc(
        "Telegram bot token from @BotFather (required for serve)", None, "—", secret=True
    )
    telegram_api_url: OptionalHttpUrl = _doc(
        "base URL of another Bot API server (self-hosted telegram-bot-api, test stand-ins)",
        None, "Telegram's public Bot API",
    )
    telegram_webhook_url: OptionalHttpUrl = _doc(
        "when set, Telegram updates arrive by webhook on this web server instead of polling",
        None, "— (long polling)",
    )
    telegram_webhook_secret: OptionalSecret = _doc(
        "secret token Telegram must send with webhook updates", None,
        "derived from the bot token (the same on every instance)", secret=True,
    )
    host: str = _doc("web server bind address", "0.0.0.0")  # noqa: S104 - a service's default
    port: Annotated[int, _parsed(_port)] = _doc("web server port", 8080)
    public_url: HttpUrl = _doc(
        "base used to show users their webhook URL (TradingView needs https on 443)",
        "http://localhost:8080",
    )
    data_dir: Annotated[Path, _parsed(Path)] = _doc(
        "SQLite file and generated master key file", Path("data"), "./data"
    )
    database_url: Annotated[str, _parsed(_database_url)] = _doc(
        "sqlite+aiosqlite:///… or postgresql+asyncpg://…", "",
        "sqlite+aiosqlite:///<data dir>/moahook.db",
    )
    master_key: Annotated[tuple[bytes, ...], _parsed(_master_keys)] = _doc(
        "key encrypting secrets at rest; comma-separated keys rotate (first encrypts)",
        (), "generated into <data dir>/master.key (mode 0600)", secret=True,
    )
    kis_real_url: HttpUrl = _doc(
        "KIS REST, real trading", DEFAULT_REST_URLS[Environment.REAL]
    )
    kis_paper_url: HttpUrl = _doc(
        "KIS REST, paper trading", DEFAULT_REST_URLS[Environment.PAPER]
    )
    kis_real_ws_url: WsUrl = _doc(
        "KIS WebSocket, real (the client connects to …/tryitout)",
        DEFAULT_WS_URLS[Environment.REAL],
    )
    kis_paper_ws_url: WsUrl = _doc(
        "KIS WebSocket, paper", DEFAULT_WS_URLS[Environment.PAPER]
    )
    kis_timeout: Annotated[float, _parsed(_seconds)] = _doc(
        "seconds before a KIS request times out (an order that times out is reconciled)",
        10.0, "10",
    )
    trusted_ips: Networks = _doc(
        "comma-separated IPs/CIDRs allowed to post alerts", (), "empty (any)"
    )
    trusted_proxies: Networks = _doc(
        "reverse proxies whose X-Forwarded-For is believed", (), "empty"
    )
    market_hours: Annotated[Literal["krx", "off"], _parsed(_choice("krx", "off"))] = _doc(
        "krx: orders outside their market's regular hours (KRX, and New York for US "
        "stocks) are refused with the next open; off: no time check", "krx"
    )
    us_market_slippage: Annotated[Decimal, _parsed(_slippage)] = _doc(
        "US market orders become limits this far past the last price (KIS takes no "
        "plain US market order)", DEFAULT_SLIPPAGE, "0.5%",
    )
    fill_notice_wait: Annotated[float, _parsed(_wait_seconds)] = _doc(
        "seconds an alert waits while its fill-notice socket reconnects (0: refuse at once)",
        5.0, "5",
    )
    lease_seconds: Annotated[float, _parsed(_lease_seconds)] = _doc(
        "several instances on PostgreSQL: how long a dead instance keeps its KIS keys and "
        "the bot before another takes them over", 10.0, "10",
    )
    instance_name: Annotated[str, _parsed(_instance_name)] = _doc(
        "this instance's name in logs and /metrics", "", "host name:port",
    )
    log_level: Annotated[
        str, _parsed(_choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", upper=True))
    ] = _doc("DEBUG, INFO, WARNING, ERROR", "INFO")
    log_format: Annotated[Literal["text", "json"], _parsed(_choice("text", "json"))] = _doc(
        "text: one readable line per record; json: one JSON object per line", "text"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `load` reads the environment and `.env` itself, so that the names it checks for
        # misspellings are exactly the ones the values came from.
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _database_next_to_data(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("database_url"):
            data_dir = Path(str(data.get("data_dir") or "data").strip())
            data = {**data, "database_url": default_database_url(data_dir)}
        return data

    def __repr__(self) -> str:
        return (
            f"Settings(host={self.host!r}, port={self.port}, public_url={self.public_url!r}, "
            f"database_url={_mask_url_password(self.database_url)!r}, "
            f"bot_token={'set' if self.bot_token else 'unset'}, "
            f"master_keys={len(self.master_keys)})"
        )

    __str__ = __repr__

    # -- derived -----------------------------------------------------------------------

    @property
    def master_keys(self) -> tuple[bytes, ...]:
        return self.master_key

    @property
    def kis(self) -> Endpoints:
        return Endpoints(
            rest={Environment.REAL: self.kis_real_url, Environment.PAPER: self.kis_paper_url},
            ws={Environment.REAL: self.kis_real_ws_url, Environment.PAPER: self.kis_paper_ws_url},
        )

    @property
    def market_hours_enforced(self) -> bool:
        return self.market_hours == "krx"

    @property
    def master_key_file(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def public_url_is_default(self) -> bool:
        return "public_url" not in self.model_fields_set

    # -- building ----------------------------------------------------------------------

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
    ) -> Settings:
        """Real start-up: `.env` first, the process environment overriding it."""
        return cls.from_mapping(read_environment(environ, dotenv))

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        """Settings from `MOAHOOK_*` names; raises `SettingsError` with every problem."""
        fields = {variable_name(name): name for name in cls.model_fields}
        problems = unknown_variables(env, fields)
        given: dict[str, Any] = {}
        for variable, name in fields.items():
            value = env.get(variable)
            if value is not None and value.strip():
                given[name] = value
        try:
            settings = cls(**given)
        except ValidationError as exc:
            problems = _problems(exc, fields) + problems
            raise SettingsError(problems) from None
        if problems:
            raise SettingsError(problems)
        return settings

    @classmethod
    def variables(cls) -> list[Variable]:
        """Every variable with its shown default and meaning (`moahook serve --help`)."""
        return [
            Variable(variable_name(name), _shown_default(info), info.description or "")
            for name, info in cls.model_fields.items()
        ]


def read_environment(
    environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
) -> dict[str, str]:
    """The variables as the service sees them: `.env`, then the environment over it."""
    merged: dict[str, str] = {}
    if dotenv is not None and dotenv.is_file():
        merged.update(parse_dotenv(dotenv.read_text(encoding="utf-8")))
    merged.update(os.environ if environ is None else environ)
    return merged


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    default: str
    meaning: str


def variable_name(field: str) -> str:
    return PREFIX + field.upper()


def unknown_variables(env: Iterable[str], known: Iterable[str]) -> list[str]:
    """One line per `MOAHOOK_*` name that no setting reads, with the likely intended one."""
    known = list(known)
    problems: list[str] = []
    for name in sorted(env):
        if not name.startswith(PREFIX) or name in known or name.startswith(_RESERVED_PREFIXES):
            continue
        # Compared without the shared prefix, which would make every name look close.
        close = difflib.get_close_matches(
            name.removeprefix(PREFIX), [k.removeprefix(PREFIX) for k in known], n=1, cutoff=0.6
        )
        hint = f"did you mean {PREFIX}{close[0]}?" if close else "see `moahook serve --help`"
        problems.append(f"{name}: not a moahook setting ({hint})")
    return problems


def _problems(exc: ValidationError, fields: Mapping[str, str]) -> list[str]:
    by_field = {name: variable for variable, name in fields.items()}
    lines: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        variable = by_field.get(field, field)
        context = error.get("ctx") or {}
        cause = context.get("error")
        message = str(cause) if isinstance(cause, _Problem) else str(error["msg"])
        lines.append(f"{variable}: {message}")
    return lines


def _shown_default(info: FieldInfo) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    shown = extra.get("default_text")
    if isinstance(shown, str):
        return shown
    default = info.default
    if isinstance(default, Path):
        return str(default)
    return "—" if default is None else str(default)


def _mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":****@")
    return url


def log_level_number(settings: Settings) -> int:
    return int(logging.getLevelName(settings.log_level))
