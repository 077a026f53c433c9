"""Fill-notice frames built by hand from KIS.md sections 10-11, decoded by kis.fillnotice."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kis.fillnotice import (
    ControlError,
    DataFrame,
    FillNotice,
    FrameError,
    NoticeCipher,
    NoticeKind,
    PingPong,
    Subscribed,
    Unsubscribed,
    decode_notices,
    notice_from_fields,
    parse_frame,
)

KEY = "abcdefghijklmnopqrstuvwxyz012345"  # 32 characters, as KIS sends
IV = "0123456789abcdef"  # 16 characters


def encrypt(text: str, key: str = KEY, iv: str = IV) -> str:
    """What KIS does: UTF-8 → PKCS#7 pad → AES-256-CBC → base64."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(text.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


# A market buy of 10 Samsung Electronics filled at 70,100: the 26 fields of the
# current layout, in KIS.md's order.
FILL_FIELDS = [
    "moauser1",  # 0 CUST_ID
    "5012345601",  # 1 ACNT_NO
    "0000012345",  # 2 ODER_NO
    "",  # 3 OODER_NO
    "02",  # 4 SELN_BYOV_CLS: buy
    "0",  # 5 RCTF_CLS: normal
    "01",  # 6 ODER_KIND: market
    "0",  # 7 ODER_COND
    "005930",  # 8 STCK_SHRN_ISCD
    "0000000010",  # 9 CNTG_QTY
    "000070100",  # 10 CNTG_UNPR
    "093012",  # 11 STCK_CNTG_HOUR
    "0",  # 12 RFUS_YN
    "2",  # 13 CNTG_YN: fill
    "2",  # 14 ACPT_YN
    "06010",  # 15 BRNC_NO
    "0000000010",  # 16 ODER_QTY
    "홍길동",  # 17 ACNT_NAME
    "",  # 18 ORD_COND_PRC
    "1",  # 19 ORD_EXG_GB
    "Y",  # 20 POPUP_YN
    "",  # 21 FILLER
    "10",  # 22 CRDT_CLS
    "",  # 23 CRDT_LOAN_DATE
    "삼성전자",  # 24 CNTG_ISNM40
    "0",  # 25 ODER_PRC (market order)
]

# The acceptance notice of a limit sell of 3 at 71,000.
ACCEPT_FIELDS = [
    "moauser1",
    "5012345601",
    "0000012346",
    "",
    "01",  # sell
    "0",
    "00",  # limit
    "0",
    "005930",
    "3",  # CNTG_QTY = order quantity in an acceptance
    "71000",  # CNTG_UNPR = order price in an acceptance
    "093500",
    "0",
    "1",  # CNTG_YN: accepted notice
    "1",  # ACPT_YN: accepted
    "06010",
    "3",
    "홍길동",
    "",
    "1",
    "Y",
    "",
    "10",
    "",
    "삼성전자",
    "71000",
]


def frame(
    fields: list[str],
    *,
    tr_id: str = "H0STCNI0",
    count: int = 1,
    encrypted: bool = True,
    key: str = KEY,
    iv: str = IV,
) -> str:
    payload = "^".join(fields)
    if encrypted:
        payload = encrypt(payload, key, iv)
    return f"{1 if encrypted else 0}|{tr_id}|{count:03d}|{payload}"


def decode(text: str, cipher: NoticeCipher | None = None) -> list[FillNotice]:
    parsed = parse_frame(text)
    assert isinstance(parsed, DataFrame)
    return decode_notices(parsed, cipher)


def test_encrypted_fill_is_decoded_into_every_field() -> None:
    [notice] = decode(frame(FILL_FIELDS), NoticeCipher(KEY, IV))
    assert notice == FillNotice(
        hts_id="moauser1",
        account="5012345601",
        order_no="0000012345",
        original_order_no="",
        side="buy",
        correction="normal",
        order_kind="01",
        order_condition="0",
        symbol="005930",
        quantity=10,
        price=70100,
        time="093012",
        refused=False,
        is_fill=True,
        accept_status="2",
        branch="06010",
        order_qty=10,
        account_name="홍길동",
        name="삼성전자",
        order_price=0,
    )
    assert notice.kind is NoticeKind.FILLED


def test_unencrypted_frame_needs_no_cipher() -> None:
    [notice] = decode(frame(ACCEPT_FIELDS, encrypted=False))
    assert notice.kind is NoticeKind.ACCEPTED
    assert (notice.side, notice.quantity, notice.price, notice.order_price) == (
        "sell",
        3,
        71000,
        71000,
    )
    assert not notice.is_fill


def test_two_records_in_one_frame() -> None:
    second = list(FILL_FIELDS)
    second[2] = "0000012399"
    second[9] = "4"
    notices = decode(frame(FILL_FIELDS + second, count=2), NoticeCipher(KEY, IV))
    assert [(n.order_no, n.quantity) for n in notices] == [("0000012345", 10), ("0000012399", 4)]


def test_refused_order_is_rejected() -> None:
    fields = list(ACCEPT_FIELDS)
    fields[12] = "1"  # RFUS_YN
    [notice] = decode(frame(fields), NoticeCipher(KEY, IV))
    assert notice.refused
    assert notice.kind is NoticeKind.REJECTED


@pytest.mark.parametrize(
    ("rctf_cls", "acpt_yn", "cntg_yn", "kind"),
    [
        ("1", "1", "1", NoticeKind.REVISED),
        ("2", "1", "1", NoticeKind.CANCELLED),
        ("0", "3", "1", NoticeKind.IOC_REMAINDER_CANCELLED),
        ("0", "2", "2", NoticeKind.FILLED),
        ("0", "1", "1", NoticeKind.ACCEPTED),
    ],
)
def test_kind_follows_kis_flags(
    rctf_cls: str, acpt_yn: str, cntg_yn: str, kind: NoticeKind
) -> None:
    fields = list(ACCEPT_FIELDS)
    fields[3] = "0000012300"
    fields[5], fields[14], fields[13] = rctf_cls, acpt_yn, cntg_yn
    [notice] = decode(frame(fields, encrypted=False))
    assert notice.kind is kind
    assert notice.original_order_no == "0000012300"


def test_older_twenty_field_layout_keeps_stable_fields_and_last_price() -> None:
    # An older layout: 0-17 as today, then two fields, the order price last.
    fields = [*FILL_FIELDS[:18], "삼성전자", "70000"]
    assert len(fields) == 20
    [notice] = decode(frame(fields), NoticeCipher(KEY, IV))
    assert notice.order_no == "0000012345"
    assert notice.quantity == 10
    assert notice.order_price == 70000
    assert notice.name == ""  # position 24 is only trusted in the 26-field layout


def test_paper_tr_id_is_kept() -> None:
    parsed = parse_frame(frame(FILL_FIELDS, tr_id="H0STCNI9"))
    assert isinstance(parsed, DataFrame)
    assert (parsed.tr_id, parsed.count, parsed.encrypted) == ("H0STCNI9", 1, True)


def test_decimal_prices_are_accepted() -> None:
    fields = list(FILL_FIELDS)
    fields[10] = "70100.00"
    [notice] = decode(frame(fields, encrypted=False))
    assert notice.price == 70100


def test_subscribe_success_carries_key_and_iv() -> None:
    text = json.dumps(
        {
            "header": {"tr_id": "H0STCNI0", "tr_key": "moauser1", "encrypt": "N"},
            "body": {
                "rt_cd": "0",
                "msg_cd": "OPSP0000",
                "msg1": "SUBSCRIBE SUCCESS",
                "output": {"iv": IV, "key": KEY},
            },
        }
    )
    parsed = parse_frame(text)
    assert isinstance(parsed, Subscribed)
    assert (parsed.key, parsed.iv, parsed.already) == (KEY, IV, False)
    assert KEY not in repr(parsed)


def test_already_subscribed_is_success() -> None:
    text = json.dumps(
        {
            "header": {"tr_id": "H0STCNI0", "tr_key": "moauser1", "encrypt": "N"},
            "body": {"rt_cd": "0", "msg_cd": "OPSP0002", "msg1": "ALREADY IN SUBSCRIBE"},
        }
    )
    parsed = parse_frame(text)
    assert isinstance(parsed, Subscribed)
    assert parsed.already
    assert parsed.key is None


def test_unsubscribe_success() -> None:
    text = json.dumps(
        {
            "header": {"tr_id": "H0STCNI0", "tr_key": "moauser1", "encrypt": "N"},
            "body": {"rt_cd": "0", "msg_cd": "OPSP0001", "msg1": "UNSUBSCRIBE SUCCESS"},
        }
    )
    assert isinstance(parse_frame(text), Unsubscribed)


@pytest.mark.parametrize("code", ["OPSP8993", "OPSP8992", "OPSP9990"])
def test_invalid_tr_key_is_an_error_with_kis_message(code: str) -> None:
    text = json.dumps(
        {
            "header": {"tr_id": "H0STCNI0", "tr_key": "nobody", "encrypt": "N"},
            "body": {"rt_cd": "1", "msg_cd": code, "msg1": "invalid tr_key"},
        }
    )
    parsed = parse_frame(text)
    assert isinstance(parsed, ControlError)
    assert parsed.invalid_tr_key
    assert (parsed.msg_cd, parsed.msg1) == (code, "invalid tr_key")


def test_pingpong_keeps_the_exact_text() -> None:
    text = '{"header":{"tr_id":"PINGPONG","datetime":"20240105093000"}}'
    parsed = parse_frame(text)
    assert parsed == PingPong(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "2|H0STCNI0|001|x",
        "1|H0STCNI0|001",
        "0|H0STCNI0|abc|a^b",
        "0|H0STCNI0|000|a^b",
        "0||001|a^b",
        "{not json",
        "[1, 2]",
        '{"header": {}, "body": {}}',
        '{"header": "x"}',
    ],
)
def test_garbage_is_a_frame_error(text: str) -> None:
    with pytest.raises(FrameError):
        parse_frame(text)


def test_wrong_key_is_a_frame_error() -> None:
    parsed = parse_frame(frame(FILL_FIELDS))
    assert isinstance(parsed, DataFrame)
    other = NoticeCipher("ZYXWVUTSRQPONMLKJIHGFEDCBA987654", IV)
    with pytest.raises(FrameError):
        decode_notices(parsed, other)


@pytest.mark.parametrize(
    "text",
    [
        "1|H0STCNI0|001|not base64!!",
        "1|H0STCNI0|001|" + base64.b64encode(b"short").decode(),
        "0|H0STCNI0|001|a^b^c",  # too few fields
        "0|H0STCNI0|002|" + "^".join(FILL_FIELDS) + "^x",  # not two equal records
        "0|H0STCNI0|001|" + "^".join(FILL_FIELDS[:4] + ["07"] + FILL_FIELDS[5:]),
    ],
)
def test_bad_payloads_are_frame_errors(text: str) -> None:
    parsed = parse_frame(text)
    assert isinstance(parsed, DataFrame)
    with pytest.raises(FrameError):
        decode_notices(parsed, NoticeCipher(KEY, IV))


def test_encrypted_frame_without_cipher_is_a_frame_error() -> None:
    parsed = parse_frame(frame(FILL_FIELDS))
    assert isinstance(parsed, DataFrame)
    with pytest.raises(FrameError):
        decode_notices(parsed, None)


def test_cipher_rejects_bad_lengths_and_hides_values() -> None:
    with pytest.raises(FrameError):
        NoticeCipher("short", IV)
    with pytest.raises(FrameError):
        NoticeCipher(KEY, "short")
    assert KEY not in repr(NoticeCipher(KEY, IV))


def test_notice_from_fields_rejects_non_numeric_quantity() -> None:
    fields = list(FILL_FIELDS)
    fields[9] = "ten"
    with pytest.raises(FrameError):
        notice_from_fields(fields)
