"""Fill-notice frames from KIS's WebSocket: classification, decryption, typed notices.

Pure functions, no I/O (KIS.md sections 10 and 11). The connection in `kis.ws` feeds
every received text frame to `parse_frame` and data frames to `decode_notices`.

    FrameError          anything that is not a frame KIS would send
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kis.env import KST

PINGPONG: Final = "PINGPONG"

# Control answer codes (KIS.md section 10).
SUBSCRIBE_SUCCESS: Final = "OPSP0000"
UNSUBSCRIBE_SUCCESS: Final = "OPSP0001"
ALREADY_SUBSCRIBED: Final = "OPSP0002"
MAX_SUBSCRIBE_OVER: Final = "OPSP0008"
INVALID_APPROVAL_KEY: Final = "OPSP0011"
INVALID_TR_ID: Final = "OPSP8991"
INVALID_TR_KEY_CODES: Final = frozenset({"OPSP8993", "OPSP8992", "OPSP9990"})
APPKEY_IN_USE: Final = "OPSP8996"
INVALID_JSON: Final = "OPSP9999"

# Positions stable across layouts (KIS.md section 11); the order price is always last.
_STABLE_FIELDS: Final = 18
_CURRENT_LAYOUT_FIELDS: Final = 26
_NAME_POSITION: Final = 24


class FrameError(ValueError):
    """A frame that cannot be understood. The message never carries the payload."""


# --- control frames --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PingPong:
    """KIS's application-level ping: answer with exactly `text`."""

    text: str


@dataclass(frozen=True, slots=True)
class Subscribed:
    """Subscribe success (`OPSP0000`) or already subscribed (`OPSP0002`)."""

    tr_id: str
    tr_key: str
    msg_cd: str
    msg1: str
    key: str | None = field(repr=False)
    iv: str | None = field(repr=False)

    @property
    def already(self) -> bool:
        return self.msg_cd == ALREADY_SUBSCRIBED


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    tr_id: str
    tr_key: str
    msg1: str


@dataclass(frozen=True, slots=True)
class ControlError:
    """A refusal: `rt_cd` other than "0" or an unknown message code."""

    tr_id: str
    tr_key: str
    msg_cd: str
    msg1: str

    @property
    def invalid_tr_key(self) -> bool:
        return self.msg_cd in INVALID_TR_KEY_CODES


@dataclass(frozen=True, slots=True)
class DataFrame:
    """`<0|1>|<tr_id>|<count>|<payload>`; the payload stays opaque until decoded."""

    encrypted: bool
    tr_id: str
    count: int
    payload: str = field(repr=False)


Frame = PingPong | Subscribed | Unsubscribed | ControlError | DataFrame


def parse_frame(text: str) -> Frame:
    """Classify one text frame received from KIS."""
    if text[:1] in ("0", "1"):
        return _parse_data(text)
    if text[:1] == "{":
        return _parse_control(text)
    raise FrameError("neither a data frame nor a JSON control message")


def _parse_data(text: str) -> DataFrame:
    parts = text.split("|", 3)
    if len(parts) != 4:
        raise FrameError("data frame without the 4 pipe-separated parts")
    flag, tr_id, count_text, payload = parts
    if flag not in ("0", "1"):
        raise FrameError("data frame with an unknown encryption flag")
    if not tr_id:
        raise FrameError("data frame without a TR ID")
    if not count_text.isdigit() or int(count_text) < 1:
        raise FrameError("data frame with an invalid record count")
    return DataFrame(encrypted=flag == "1", tr_id=tr_id, count=int(count_text), payload=payload)


def _text(mapping: dict[str, object], name: str) -> str:
    value = mapping.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    raise FrameError(f"control message field {name} is not text")


def _section(mapping: dict[str, object], name: str) -> dict[str, object]:
    value = mapping.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FrameError(f"control message {name} is not an object")
    return value


def _parse_control(text: str) -> Frame:
    try:
        document = json.loads(text)
    except ValueError:
        raise FrameError("control message is not valid JSON") from None
    if not isinstance(document, dict):
        raise FrameError("control message is not a JSON object")
    header = _section(document, "header")
    tr_id = _text(header, "tr_id")
    tr_key = _text(header, "tr_key")
    if tr_id == PINGPONG:
        return PingPong(text)
    body = _section(document, "body")
    rt_cd = _text(body, "rt_cd")
    msg_cd = _text(body, "msg_cd")
    msg1 = _text(body, "msg1")
    if not msg_cd and not rt_cd:
        raise FrameError("control message without rt_cd or msg_cd")
    if rt_cd in ("", "0") and msg_cd in (SUBSCRIBE_SUCCESS, ALREADY_SUBSCRIBED):
        output = _section(body, "output")
        key = _text(output, "key") or None
        iv = _text(output, "iv") or None
        return Subscribed(tr_id, tr_key, msg_cd, msg1, key, iv)
    if rt_cd in ("", "0") and msg_cd == UNSUBSCRIBE_SUCCESS:
        return Unsubscribed(tr_id, tr_key, msg1)
    return ControlError(tr_id, tr_key, msg_cd, msg1)


# --- decryption ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoticeCipher:
    """The AES key and iv of one subscription (they change with every subscription)."""

    key: str = field(repr=False)
    iv: str = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key.encode()) not in (16, 24, 32):
            raise FrameError("subscription key has an invalid length for AES")
        if len(self.iv.encode()) != 16:
            raise FrameError("subscription iv is not 16 bytes")

    def decrypt(self, payload: str) -> str:
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise FrameError("encrypted payload is not base64") from None
        if not data or len(data) % 16:
            raise FrameError("encrypted payload is not a whole number of AES blocks")
        decryptor = Cipher(
            algorithms.AES(self.key.encode()), modes.CBC(self.iv.encode())
        ).decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            plain = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise FrameError("encrypted payload has invalid padding (wrong key or iv?)") from None
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError("decrypted payload is not UTF-8") from None


# --- the notice ------------------------------------------------------------------------


class NoticeKind(enum.StrEnum):
    ACCEPTED = "accepted"
    FILLED = "filled"
    REJECTED = "rejected"
    REVISED = "revised"
    CANCELLED = "cancelled"
    IOC_REMAINDER_CANCELLED = "ioc_remainder_cancelled"


_SIDES: Final = {"01": "sell", "02": "buy"}
_CORRECTIONS: Final = {"0": "normal", "1": "revise", "2": "cancel"}


@dataclass(frozen=True, slots=True)
class FillNotice:
    """One fill-notice record (체결통보), KIS.md section 11."""

    hts_id: str
    account: str
    order_no: str
    original_order_no: str
    side: str  # "buy" | "sell"
    correction: str  # "normal" | "revise" | "cancel"
    order_kind: str  # ORD_DVSN code
    order_condition: str  # "0" none, "1" IOC, "2" FOK
    symbol: str
    quantity: int  # CNTG_QTY: filled quantity, or the order quantity in an acceptance
    price: Decimal  # CNTG_UNPR: fill price, or the order price in an acceptance
    time: str  # HHMMSS, KST
    refused: bool
    is_fill: bool
    accept_status: str  # ACPT_YN
    branch: str
    order_qty: int
    account_name: str
    name: str  # stock name; empty when the layout is not the known 26-field one
    order_price: Decimal
    market: str = "KRX"  # which market's notice TR it came on ("KRX", "US")
    exchange: str = ""  # the order exchange code for US notices (NASD, NYSE, AMEX)
    # KIS sends no fill id: a fill filled in equal lots within one second arrives as
    # identical records. n = this is the n-th identical record of one subscription.
    occurrence: int = 1

    @property
    def kind(self) -> NoticeKind:
        if self.refused:
            return NoticeKind.REJECTED
        if self.accept_status == "3":
            return NoticeKind.IOC_REMAINDER_CANCELLED
        if self.is_fill:
            return NoticeKind.FILLED
        if self.correction == "revise":
            return NoticeKind.REVISED
        if self.correction == "cancel":
            return NoticeKind.CANCELLED
        return NoticeKind.ACCEPTED


def _number(value: str, what: str) -> int:
    value = value.strip()
    if not value:
        return 0
    with contextlib.suppress(ValueError):
        return int(value)
    # Some layouts carry prices as decimals ("70000.00").
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise FrameError(f"{what} is not a number") from None
    if not number.is_finite():
        raise FrameError(f"{what} is not a number")
    return int(number.to_integral_value())


def _price(value: str, what: str, implied_decimals: int = 0) -> Decimal:
    value = value.strip()
    if not value:
        return Decimal(0)
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise FrameError(f"{what} is not a number") from None
    if not number.is_finite():
        raise FrameError(f"{what} is not a number")
    return number.scaleb(-implied_decimals) if implied_decimals else number


RecordDecoder = Callable[[list[str], datetime], "FillNotice"]
"""Maps one record's fields to a notice; the datetime is when the frame arrived."""


def notice_from_fields(fields: list[str], received: datetime | None = None) -> FillNotice:
    """Map one record's `^`-separated fields (any layout with the stable 18 + last)."""
    if len(fields) < _STABLE_FIELDS + 1:
        raise FrameError(f"fill notice has {len(fields)} fields, expected at least 19")
    side = _SIDES.get(fields[4])
    if side is None:
        raise FrameError("fill notice has an unknown buy/sell code")
    correction = _CORRECTIONS.get(fields[5])
    if correction is None:
        raise FrameError("fill notice has an unknown revise/cancel code")
    name = fields[_NAME_POSITION].strip() if len(fields) == _CURRENT_LAYOUT_FIELDS else ""
    return FillNotice(
        hts_id=fields[0].strip(),
        account=fields[1].strip(),
        order_no=fields[2].strip(),
        original_order_no=fields[3].strip(),
        side=side,
        correction=correction,
        order_kind=fields[6].strip(),
        order_condition=fields[7].strip(),
        symbol=fields[8].strip(),
        quantity=_number(fields[9], "CNTG_QTY"),
        price=_price(fields[10], "CNTG_UNPR"),
        time=fields[11].strip(),
        refused=fields[12] == "1",
        is_fill=fields[13] == "2",
        accept_status=fields[14].strip(),
        branch=fields[15].strip(),
        order_qty=_number(fields[16], "ODER_QTY"),
        account_name=fields[17].strip(),
        name=name,
        order_price=_price(fields[-1], "ODER_PRC"),
    )


# The overseas notice (H0GSCNI0/H0GSCNI9, KIS.md section 13): 25 fields.
OVERSEAS_FIELDS: Final = 25
OVERSEAS_PRICE_DECIMALS: Final = 4  # CNTG_UNPR "001480100" = 148.01
_OVERSEAS_EXCHANGES: Final = {"6": "NASD", "7": "NYSE", "8": "AMEX"}


def notice_from_overseas_fields(fields: list[str], received: datetime) -> FillNotice:
    """Map one overseas record; a missing time (STCK_CNTG_HOUR) is the time of receipt."""
    if len(fields) != OVERSEAS_FIELDS:
        raise FrameError(f"overseas fill notice has {len(fields)} fields, expected 25")
    side = _SIDES.get(fields[4])
    if side is None:
        raise FrameError("fill notice has an unknown buy/sell code")
    correction = _CORRECTIONS.get(fields[5])
    if correction is None:
        raise FrameError("fill notice has an unknown revise/cancel code")
    quantity = _number(fields[8], "CNTG_QTY")
    price = _price(fields[9], "CNTG_UNPR", OVERSEAS_PRICE_DECIMALS)
    is_fill = fields[12] == "2"
    time = fields[10].strip() or received.astimezone(KST).strftime("%H%M%S")
    return FillNotice(
        hts_id=fields[0].strip(),
        account=fields[1].strip(),
        order_no=fields[2].strip(),
        original_order_no=fields[3].strip(),
        side=side,
        correction=correction,
        order_kind=fields[6].strip(),
        order_condition="0",
        symbol=fields[7].strip(),
        quantity=quantity,
        price=price,
        time=time,
        refused=fields[11] == "1",
        is_fill=is_fill,
        accept_status=fields[13].strip(),
        branch=fields[14].strip(),
        # An acceptance leaves ODER_QTY empty and carries the order in CNTG_QTY/CNTG_UNPR.
        order_qty=_number(fields[15], "ODER_QTY") or (0 if is_fill else quantity),
        account_name=fields[16].strip(),
        name=fields[17].strip(),
        order_price=Decimal(0) if is_fill else price,
        market="US",
        exchange=_OVERSEAS_EXCHANGES.get(fields[18].strip(), ""),
    )


def decode_notices(
    frame: DataFrame,
    cipher: NoticeCipher | None,
    decode: RecordDecoder = notice_from_fields,
    received: datetime | None = None,
) -> list[FillNotice]:
    """Decrypt when flagged, split into `frame.count` records and map each one."""
    if frame.encrypted:
        if cipher is None:
            raise FrameError("encrypted frame before any subscription key arrived")
        text = cipher.decrypt(frame.payload)
    else:
        text = frame.payload
    fields = text.split("^")
    if len(fields) % frame.count:
        raise FrameError(
            f"{len(fields)} fields do not split into {frame.count} records of equal size"
        )
    size = len(fields) // frame.count
    at = received or datetime.now(KST)
    return [decode(fields[i : i + size], at) for i in range(0, len(fields), size)]
