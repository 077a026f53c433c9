"""Access tokens and WebSocket approval keys, with KIS's issuance rules (KIS.md 3-4)."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from kis.env import Environment
from kis.sim.accounts import SimAccount
from kis.sim.clock import Clock
from kis.sim.codes import AuthRefusal, gateway

TOKEN_LIFETIME_S = 86_400
SAME_TOKEN_WINDOW_S = 6 * 3600


@dataclass(slots=True)
class IssuedToken:
    value: str = field(repr=False)
    app_key: str = field(repr=False)
    env: Environment
    issued_at: float
    expires_at: float
    revoked: bool = False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _new_token(app_key: str, issued_at: float, expires_at: float) -> str:
    """JWT-shaped like KIS's tokens (the client must treat it as opaque)."""
    header = _b64(json.dumps({"typ": "JWT", "alg": "HS512"}).encode())
    payload = _b64(
        json.dumps(
            {
                "sub": "token",
                "aud": str(uuid.uuid4()),
                "prdt_cd": "",
                "iss": "unogw",
                "exp": int(expires_at),
                "iat": int(issued_at),
                "jti": app_key[:8] + secrets.token_hex(8),
            }
        ).encode()
    )
    return f"{header}.{payload}.{_b64(secrets.token_bytes(64))}"


class Credentials:
    """Who may call: app keys per environment, their tokens and approval keys."""

    def __init__(
        self,
        lookup: Callable[[str], SimAccount | None],
        clock: Clock,
        *,
        token_interval_s: float = 60.0,
    ) -> None:
        self._lookup = lookup
        self._clock = clock
        self.token_interval_s = token_interval_s
        self._tokens: dict[str, IssuedToken] = {}
        self._latest: dict[str, IssuedToken] = {}
        self._last_issued: dict[str, float] = {}
        self._approvals: dict[str, tuple[str, Environment]] = {}
        self.issuances: dict[str, int] = {}

    def account_for(self, env: Environment, app_key: str, app_secret: str) -> SimAccount:
        """The account behind a key pair on `env`, or KIS's refusal (403 form)."""
        account = self._lookup(app_key) if app_key else None
        if account is None or account.env is not env:
            raise AuthRefusal("EGW00103")
        if not hmac.compare_digest(account.app_secret.encode(), app_secret.encode()):
            raise AuthRefusal("EGW00105")
        return account

    def issue_token(self, env: Environment, app_key: str, app_secret: str) -> IssuedToken:
        self.account_for(env, app_key, app_secret)
        now = self._clock()
        last = self._last_issued.get(app_key)
        if last is not None and now - last < self.token_interval_s:
            raise AuthRefusal("EGW00133")
        self._last_issued[app_key] = now
        self.issuances[app_key] = self.issuances.get(app_key, 0) + 1
        current = self._latest.get(app_key)
        if (
            current is not None
            and not current.revoked
            and now - current.issued_at < SAME_TOKEN_WINDOW_S
            and now < current.expires_at
        ):
            return current  # KIS hands back the same token within 6 hours
        expires = now + TOKEN_LIFETIME_S
        token = IssuedToken(_new_token(app_key, now, expires), app_key, env, now, expires)
        self._tokens[token.value] = token
        self._latest[app_key] = token
        return token

    def revoke(self, env: Environment, app_key: str, app_secret: str, token: str) -> None:
        self.account_for(env, app_key, app_secret)
        issued = self._tokens.get(token)
        if issued is None or issued.app_key != app_key:
            raise AuthRefusal("EGW00121")
        issued.revoked = True

    def expire(self, app_key: str | None = None) -> int:
        """Make tokens (of one key, or all) expired now; returns how many."""
        now = self._clock()
        count = 0
        for token in self._tokens.values():
            if app_key is None or token.app_key == app_key:
                token.expires_at = min(token.expires_at, now)
                count += 1
        return count

    def check_bearer(self, authorization: str, app_key: str) -> IssuedToken:
        """Validate an `authorization: Bearer …` header for `app_key` (HTTP 500 refusals)."""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise gateway("EGW00121")
        token = self._tokens.get(value.strip())
        if token is None or token.revoked or token.app_key != app_key:
            raise gateway("EGW00121")
        if self._clock() >= token.expires_at:
            raise gateway("EGW00123")
        return token

    def issue_approval(self, env: Environment, app_key: str, secret_key: str) -> str:
        self.account_for(env, app_key, secret_key)
        key = str(uuid.uuid4())
        self._approvals[key] = (app_key, env)
        return key

    def approval_owner(self, env: Environment, approval_key: str) -> str | None:
        """The app key an approval key was issued to on `env`."""
        owner = self._approvals.get(approval_key)
        if owner is None or owner[1] is not env:
            return None
        return owner[0]
