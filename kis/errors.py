"""Errors raised by the KIS REST client.

One hierarchy, decided on KIS's own answer (`rt_cd`/`msg_cd`, or `error_code` on the
oauth endpoints), never on the HTTP status alone::

    KisError
    ├── KisTransportError        the request never reached KIS (connect/pool errors), or an
    │                            inquiry got no usable answer: nothing was placed
    ├── KisApiError              KIS answered and refused (rt_cd != "0" / error_code)
    │   ├── KisRateLimited       EGW00201, per-second limit exceeded
    │   ├── KisTokenInvalid      EGW00121 / EGW00122 / EGW00123, token invalid/missing/expired
    │   ├── KisTokenIssueTooSoon EGW00133, one issuance a minute per app key (retry_after)
    │   ├── KisServerError       OPSQ…, or a 5xx without a readable KIS body
    │   └── KisAuthError         token/approval issuance refused (bad app key/secret…)
    └── OrderOutcomeUnknown      an order request may have been written but no answer came
                                 back; never retried automatically, reconcile first

Messages carry TR IDs and KIS codes/texts, never secrets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kis.models import OrderRequest, OverseasOrderRequest

RATE_LIMITED = "EGW00201"
TOKEN_INVALID_CODES = frozenset({"EGW00121", "EGW00122", "EGW00123"})
TOKEN_ISSUE_TOO_SOON = "EGW00133"
AUTH_CODES = frozenset({"EGW00103", "EGW00104", "EGW00105", "EGW00106", "EGW00131"})
SERVER_PREFIX = "OPSQ"
INPUT_CHECK_MARKER = "INVALID_CHECK_"


class KisError(Exception):
    """Base of every error the KIS client raises."""


class KisTransportError(KisError):
    """No usable answer from KIS; for orders only raised when nothing can have been placed."""

    def __init__(self, message: str, *, tr_id: str | None = None) -> None:
        super().__init__(message)
        self.tr_id = tr_id


class KisApiError(KisError):
    """KIS answered with a refusal."""

    def __init__(
        self,
        *,
        rt_cd: str,
        msg_cd: str,
        msg1: str,
        tr_id: str | None,
        http_status: int,
    ) -> None:
        self.rt_cd = rt_cd
        self.msg_cd = msg_cd
        self.msg1 = msg1
        self.tr_id = tr_id
        self.http_status = http_status
        super().__init__(
            f"[{msg_cd or '-'}] {msg1 or '(no message)'} "
            f"(tr_id={tr_id or '-'}, rt_cd={rt_cd or '-'}, http={http_status})"
        )


class KisRateLimited(KisApiError):
    """EGW00201: the per-second limit of the app key was exceeded."""


class KisTokenInvalid(KisApiError):
    """EGW00121/122/123: the access token is invalid, unknown or expired."""


class KisTokenIssueTooSoon(KisApiError):
    """EGW00133, or our own once-a-minute guard: wait `retry_after` seconds."""

    def __init__(
        self,
        *,
        rt_cd: str,
        msg_cd: str,
        msg1: str,
        tr_id: str | None,
        http_status: int,
        retry_after: float = 60.0,
    ) -> None:
        super().__init__(
            rt_cd=rt_cd, msg_cd=msg_cd, msg1=msg1, tr_id=tr_id, http_status=http_status
        )
        self.retry_after = retry_after


class KisServerError(KisApiError):
    """KIS gateway trouble (OPSQ…) or a 5xx without a KIS body: transient."""


class KisAuthError(KisApiError):
    """Token or approval-key issuance refused: wrong app key/secret or wrong environment."""


class OrderOutcomeUnknown(KisError):
    """The order request may have reached KIS, but no answer came back.

    The order may or may not exist: reconcile with the daily executions before sending
    anything else. `order` is the request for new orders; `original_order_no` is set for
    a revise/cancel.
    """

    def __init__(
        self,
        message: str,
        *,
        tr_id: str,
        order: OrderRequest | OverseasOrderRequest | None = None,
        original_order_no: str | None = None,
    ) -> None:
        super().__init__(message)
        self.tr_id = tr_id
        self.order = order
        self.original_order_no = original_order_no


def api_error(
    *,
    rt_cd: str,
    msg_cd: str,
    msg1: str,
    tr_id: str | None,
    http_status: int,
    oauth: bool = False,
) -> KisApiError:
    """The most specific `KisApiError` for a refusal; `oauth` for token/approval issuance."""
    cls: type[KisApiError]
    if msg_cd == RATE_LIMITED:
        cls = KisRateLimited
    elif msg_cd == TOKEN_ISSUE_TOO_SOON:
        cls = KisTokenIssueTooSoon
    elif msg_cd in TOKEN_INVALID_CODES:
        cls = KisTokenInvalid
    elif msg_cd.startswith(SERVER_PREFIX) and INPUT_CHECK_MARKER in msg1:
        # KIS reports request-validation failures with OPSQ codes too; those are
        # deterministic refusals (nothing was placed), so retrying cannot help.
        cls = KisApiError
    elif msg_cd.startswith(SERVER_PREFIX) or (not msg_cd and http_status >= 500):
        cls = KisServerError
    elif msg_cd in AUTH_CODES or oauth:
        cls = KisAuthError
    else:
        cls = KisApiError
    return cls(rt_cd=rt_cd, msg_cd=msg_cd, msg1=msg1, tr_id=tr_id, http_status=http_status)
