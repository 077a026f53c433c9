"""Fill-notice records and frames exactly as KIS sends them (KIS.md sections 10-11). Pure."""

from __future__ import annotations

import base64
import json
import secrets
import string

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kis.sim.accounts import SimAccount
from kis.sim.orders import Notice

FIELD_NAMES: tuple[str, ...] = (
    "CUST_ID", "ACNT_NO", "ODER_NO", "OODER_NO", "SELN_BYOV_CLS", "RCTF_CLS", "ODER_KIND",
    "ODER_COND", "STCK_SHRN_ISCD", "CNTG_QTY", "CNTG_UNPR", "STCK_CNTG_HOUR", "RFUS_YN",
    "CNTG_YN", "ACPT_YN", "BRNC_NO", "ODER_QTY", "ACNT_NAME", "ORD_COND_PRC", "ORD_EXG_GB",
    "POPUP_YN", "FILLER", "CRDT_CLS", "CRDT_LOAN_DATE", "CNTG_ISNM40", "ODER_PRC",
)
_EXCHANGE_CODES = {"KRX": "1", "NXT": "2", "SOR": "3"}
_KEY_ALPHABET = string.ascii_letters + string.digits


def notice_fields(account: SimAccount, notice: Notice) -> list[str]:
    """The 26 `^`-separated values of one H0STCNI0/H0STCNI9 record, in order."""
    order = notice.order
    return [
        account.hts_id,
        account.cano + account.product_code,
        order.odno,
        order.original_odno,
        order.side.value,
        order.kind.value,
        order.ord_dvsn,
        "0",
        order.symbol,
        str(notice.qty),
        str(notice.price),
        notice.time,
        notice.rfus_yn,
        notice.cntg_yn,
        notice.acpt_yn,
        order.orgno,
        str(order.qty),
        account.name,
        "0",
        _EXCHANGE_CODES.get(order.exchange, "1"),
        "Y",
        "",
        "10",
        "",
        order.name,
        str(order.price),
    ]


def new_key_iv() -> tuple[str, str]:
    """A fresh (32-char key, 16-char iv) pair for one subscription."""
    key = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(32))
    iv = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    return key, iv


def encrypt(text: str, key: str, iv: str) -> str:
    """base64(AES-256-CBC(PKCS#7(text))) with key/iv used as their UTF-8 bytes."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(text.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


def data_frame(tr_id: str, records: list[list[str]], key: str, iv: str) -> str:
    """`1|<tr_id>|<count>|<payload>`: records joined by `^` one after another, encrypted."""
    text = "^".join("^".join(record) for record in records)
    return f"1|{tr_id}|{len(records):03d}|{encrypt(text, key, iv)}"


def control_answer(
    tr_id: str,
    tr_key: str,
    rt_cd: str,
    msg_cd: str,
    msg1: str,
    output: dict[str, str] | None = None,
) -> str:
    body: dict[str, object] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
    if output is not None:
        body["output"] = output
    header = {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"}
    return json.dumps({"header": header, "body": body}, ensure_ascii=False)


def pingpong(stamp: str) -> str:
    """KIS's PINGPONG frame; `stamp` is YYYYMMDDHHMMSS."""
    return json.dumps({"header": {"tr_id": "PINGPONG", "datetime": stamp}})
