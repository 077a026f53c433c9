"""Which account a fill notice is for (SPEC section 16). Pure.

KIS allows one WebSocket session per app key, and a fill-notice registration is by HTS
ID: every account watched through one app key shares that key's session, and a notice
can come for any account of the HTS ID. The notice carries its account number
(`ACNT_NO`) and HTS ID (`CUST_ID`), which pick the account.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Watched:
    """What routing needs of one watched account."""

    account_id: int
    hts_id: str
    cano: str
    product_code: str


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def number_matches(watched: Watched, notice_account: str) -> bool:
    """`ACNT_NO` as KIS sends it: the 8-digit account number with the 2-digit product
    code (the simulator, KIS's samples), or the 8 digits alone."""
    digits = _digits(notice_account)
    return digits in (watched.cano + watched.product_code, watched.cano)


def notice_accounts(
    watched: Sequence[Watched], hts_id: str, notice_account: str
) -> list[Watched]:
    """The accounts on one session a notice may be for, in the given order.

    The HTS ID narrows (when the notice has one), the account number decides: a notice
    whose number matches no account here is another account's of that HTS ID (not
    watched, or watched through its own key's session, which delivers it too): for
    none. Several accounts can match — one KIS account registered under two names —
    and the caller tells them apart by the order number. A notice without a number
    goes to the accounts of its HTS ID."""
    wanted_hts = hts_id.strip().lower()
    same_hts = [w for w in watched if not wanted_hts or w.hts_id.lower() == wanted_hts]
    candidates = same_hts or list(watched)
    if not _digits(notice_account):
        return candidates
    return [w for w in candidates if number_matches(w, notice_account)]
