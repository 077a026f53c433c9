"""Which watched account a fill notice is for (several accounts on one app key's
session, one HTS ID with several KIS accounts). Pure."""

from __future__ import annotations

from bot.notice_routes import Watched, notice_accounts

MAIN = Watched(1, "trader", "11111111", "01")
ISA = Watched(2, "trader", "22222222", "01")
KID = Watched(3, "kid", "33333333", "01")


def ids(found: list[Watched]) -> list[int]:
    return [w.account_id for w in found]


def test_the_account_number_picks_the_account_among_those_of_one_hts_id() -> None:
    assert ids(notice_accounts([MAIN, ISA, KID], "trader", "2222222201")) == [2]
    assert ids(notice_accounts([MAIN, ISA, KID], "TRADER", "22222222")) == [2]  # 8 digits
    assert ids(notice_accounts([MAIN, ISA, KID], "kid", "33333333-01")) == [3]


def test_a_notice_for_an_account_not_watched_on_this_session_is_for_none() -> None:
    """An HTS ID's subscription delivers every account of it: ISA's notice also arrives
    on MAIN's own key's session, and must not be taken as MAIN's."""
    assert notice_accounts([MAIN], "trader", "2222222201") == []


def test_one_kis_account_under_two_names_gives_both_candidates() -> None:
    twin = Watched(4, "trader", "11111111", "01")
    assert ids(notice_accounts([MAIN, twin], "trader", "1111111101")) == [1, 4]


def test_without_an_account_number_the_hts_id_decides() -> None:
    assert ids(notice_accounts([MAIN, KID], "kid", "")) == [3]
    assert ids(notice_accounts([MAIN], "", "")) == [1]
