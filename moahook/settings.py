"""The one settings object, built from `MOAHOOK_*` variables and `.env`."""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from kis.env import DEFAULT_REST_URLS, DEFAULT_WS_URLS, Endpoints, Environment
from kis.markets.us import DEFAULT_SLIPPAGE, parse_slippage
from kis.secret import Secret
from storage.crypto import decode_master_key

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Getter = Callable[[str], str | None]


class SettingsError(ValueError):
    """A configuration value is unusable; the message names the variable."""


def parse_dotenv(text: str) -> dict[str, str]:
    """`KEY=value` lines; `#` comments, `export ` prefixes and quotes allowed."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


@dataclass(frozen=True)
class Settings:
    bot_token: Secret | None = None
    telegram_api_url: str | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: Secret | None = None
    host: str = "0.0.0.0"  # noqa: S104 - a service listens on all interfaces by default
    port: int = 8080
    public_url: str = "http://localhost:8080"
    data_dir: Path = Path("data")
    database_url: str = ""
    master_keys: tuple[bytes, ...] = ()
    kis: Endpoints = field(default_factory=Endpoints.kis_defaults)
    trusted_ips: tuple[IPNetwork, ...] = ()
    trusted_proxies: tuple[IPNetwork, ...] = ()
    market_hours: str = "krx"
    log_level: str = "INFO"
    kis_timeout: float = 10.0
    us_market_slippage: Decimal = DEFAULT_SLIPPAGE
    lease_seconds: float = 10.0
    instance_name: str = ""  # empty: host name and port
    fill_notice_wait: float = 5.0

    def __repr__(self) -> str:
        return (
            f"Settings(host={self.host!r}, port={self.port}, public_url={self.public_url!r}, "
            f"database_url={_mask_url_password(self.database_url)!r}, "
            f"bot_token={'set' if self.bot_token else 'unset'}, "
            f"master_keys={len(self.master_keys)})"
        )

    @property
    def market_hours_enforced(self) -> bool:
        return self.market_hours == "krx"

    @property
    def master_key_file(self) -> Path:
        return self.data_dir / "master.key"

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
    ) -> Settings:
        """Real start-up: `.env` first, the process environment overriding it."""
        merged: dict[str, str] = {}
        if dotenv is not None and dotenv.is_file():
            merged.update(parse_dotenv(dotenv.read_text(encoding="utf-8")))
        merged.update(os.environ if environ is None else environ)
        return cls.from_mapping(merged)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str) -> str | None:
            value = env.get(name)
            if value is None:
                return None
            value = value.strip()
            return value or None

        data_dir = Path(get("MOAHOOK_DATA_DIR") or "data")
        database_url = get("MOAHOOK_DATABASE_URL") or (
            f"sqlite+aiosqlite:///{(data_dir / 'moahook.db').as_posix()}"
        )
        _check_database_url(database_url)

        bot_token = get("MOAHOOK_BOT_TOKEN")
        if bot_token is not None and (":" not in bot_token or not bot_token.split(":")[0]):
            raise SettingsError(
                "MOAHOOK_BOT_TOKEN: not a Telegram bot token (expected '<digits>:<secret>' "
                "from @BotFather)"
            )
        webhook_secret = get("MOAHOOK_TELEGRAM_WEBHOOK_SECRET")

        return cls(
            bot_token=Secret(bot_token) if bot_token else None,
            telegram_api_url=_url("MOAHOOK_TELEGRAM_API_URL", get, ("http", "https"), None),
            telegram_webhook_url=_url(
                "MOAHOOK_TELEGRAM_WEBHOOK_URL", get, ("https", "http"), None
            ),
            telegram_webhook_secret=Secret(webhook_secret) if webhook_secret else None,
            host=get("MOAHOOK_HOST") or "0.0.0.0",  # noqa: S104
            port=_port(get("MOAHOOK_PORT")),
            public_url=_url("MOAHOOK_PUBLIC_URL", get, ("http", "https"), "http://localhost:8080")
            or "http://localhost:8080",
            data_dir=data_dir,
            database_url=database_url,
            master_keys=_master_keys(get("MOAHOOK_MASTER_KEY")),
            kis=Endpoints(
                rest={
                    Environment.REAL: _url(
                        "MOAHOOK_KIS_REAL_URL", get, ("http", "https"),
                        DEFAULT_REST_URLS[Environment.REAL],
                    ) or "",
                    Environment.PAPER: _url(
                        "MOAHOOK_KIS_PAPER_URL", get, ("http", "https"),
                        DEFAULT_REST_URLS[Environment.PAPER],
                    ) or "",
                },
                ws={
                    Environment.REAL: _url(
                        "MOAHOOK_KIS_REAL_WS_URL", get, ("ws", "wss"),
                        DEFAULT_WS_URLS[Environment.REAL],
                    ) or "",
                    Environment.PAPER: _url(
                        "MOAHOOK_KIS_PAPER_WS_URL", get, ("ws", "wss"),
                        DEFAULT_WS_URLS[Environment.PAPER],
                    ) or "",
                },
            ),
            trusted_ips=_networks("MOAHOOK_TRUSTED_IPS", get("MOAHOOK_TRUSTED_IPS")),
            trusted_proxies=_networks("MOAHOOK_TRUSTED_PROXIES", get("MOAHOOK_TRUSTED_PROXIES")),
            market_hours=_choice("MOAHOOK_MARKET_HOURS", get, ("krx", "off"), "krx"),
            log_level=_choice(
                "MOAHOOK_LOG_LEVEL", get, ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
                "INFO", upper=True,
            ),
            kis_timeout=_positive_float("MOAHOOK_KIS_TIMEOUT", get("MOAHOOK_KIS_TIMEOUT"), 10.0),
            us_market_slippage=_slippage(
                "MOAHOOK_US_MARKET_SLIPPAGE", get("MOAHOOK_US_MARKET_SLIPPAGE")
            ),
            lease_seconds=_lease_seconds(get("MOAHOOK_LEASE_SECONDS")),
            instance_name=_instance_name(get("MOAHOOK_INSTANCE_NAME")),
            fill_notice_wait=_seconds(
                "MOAHOOK_FILL_NOTICE_WAIT", get("MOAHOOK_FILL_NOTICE_WAIT"), 5.0
            ),
        )


def _url(
    name: str,
    get: Getter,
    schemes: tuple[str, ...],
    default: str | None,
) -> str | None:
    value = get(name)
    if value is None:
        return default
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise SettingsError(
            f"{name}: {value!r} is not a URL ({' or '.join(s + '://' for s in schemes)}host)"
        )
    try:
        _ = parts.port
    except ValueError as exc:
        raise SettingsError(f"{name}: {value!r} has an invalid port") from exc
    return value.rstrip("/")


def _port(value: str | None) -> int:
    if value is None:
        return 8080
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:
        raise SettingsError(f"MOAHOOK_PORT: {value!r} is not a port number (1-65535)")
    return int(value)


def _positive_float(name: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise SettingsError(f"{name}: {value!r} is not a positive number of seconds")
    return number


def _slippage(name: str, value: str | None) -> Decimal:
    if value is None or not value.strip():
        return DEFAULT_SLIPPAGE
    try:
        return parse_slippage(value)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None


MIN_LEASE_SECONDS = 2.0
MAX_LEASE_SECONDS = 300.0


def _lease_seconds(value: str | None) -> float:
    if value is None:
        return 10.0
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not MIN_LEASE_SECONDS <= number <= MAX_LEASE_SECONDS:
        raise SettingsError(
            f"MOAHOOK_LEASE_SECONDS: {value!r} is not a number of seconds between "
            f"{MIN_LEASE_SECONDS:g} and {MAX_LEASE_SECONDS:g}"
        )
    return number


def _instance_name(value: str | None) -> str:
    if value is None:
        return ""
    if len(value) > 64 or not all(c.isascii() and (c.isalnum() or c in "-_.:") for c in value):
        raise SettingsError(
            f"MOAHOOK_INSTANCE_NAME: {value!r} must be at most 64 letters, digits or - _ . :"
        )
    return value


def _seconds(name: str, value: str | None, default: float) -> float:
    """0 or more seconds (0 turns the wait off)."""
    if value is None:
        return default
    try:
        number = float(value) if value.isascii() else -1.0
    except ValueError:
        number = -1.0
    if not 0 <= number <= 600:
        raise SettingsError(f"{name}: {value!r} is not a number of seconds from 0 to 600")
    return number


def _choice(
    name: str, get: Getter, allowed: tuple[str, ...], default: str, *, upper: bool = False
) -> str:
    value = get(name)
    if value is None:
        return default
    value = value.upper() if upper else value.lower()
    if value not in allowed:
        raise SettingsError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _networks(name: str, value: str | None) -> tuple[IPNetwork, ...]:
    if value is None:
        return ()
    networks: list[IPNetwork] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise SettingsError(f"{name}: {item!r} is not an IP address or CIDR range") from exc
    return tuple(networks)


def _master_keys(value: str | None) -> tuple[bytes, ...]:
    if value is None:
        return ()
    keys: list[bytes] = []
    for position, item in enumerate(value.split(","), start=1):
        if not item.strip():
            continue
        try:
            keys.append(decode_master_key(item))
        except ValueError as exc:
            raise SettingsError(
                f"MOAHOOK_MASTER_KEY: key #{position} {exc} (make one with `moahook gen-key`)"
            ) from None
    return tuple(keys)


def _check_database_url(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise SettingsError(
            f"MOAHOOK_DATABASE_URL: scheme {scheme or '(none)'!r} is not supported "
            "(use sqlite+aiosqlite:/// or postgresql+asyncpg://)"
        )


def _mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":****@")
    return url


def log_level_number(settings: Settings) -> int:
    return int(logging.getLevelName(settings.log_level))
