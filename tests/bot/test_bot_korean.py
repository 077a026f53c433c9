"""Korean particles by the final sound (Hangul, digits, Latin letters) and durations."""

from __future__ import annotations

import pytest

from bot.korean import duration, particle, with_particle
from bot.texts import t


@pytest.mark.parametrize(
    ("word", "pair", "expected"),
    [
        # Hangul: the final consonant decides; ㄹ takes 로.
        ("실전투자", "으로/로", "로"),
        ("계좌", "이/가", "가"),
        ("계정", "이/가", "이"),
        ("잔고", "을/를", "를"),
        ("종목", "을/를", "을"),
        ("서울", "으로/로", "로"),
        ("서울", "이/가", "이"),
        ("주문", "은/는", "은"),
        # Digits as read aloud: 팔, 이, 영, 십, 백, 천, 만, 조.
        ("12345678", "을/를", "을"),
        ("12", "을/를", "를"),
        ("10", "이/가", "이"),
        ("1,000", "은/는", "은"),
        ("7", "으로/로", "로"),
        ("3", "으로/로", "으로"),
        ("1000000000000", "이/가", "가"),
        # Latin letters by their Korean names: 와이, 디, 엘, 엠.
        ("App Key", "이/가", "가"),
        ("App Secret", "이/가", "이"),
        ("token", "이/가", "이"),
        ("Order", "을/를", "를"),
        ("Email", "으로/로", "로"),
        ("ID", "을/를", "를"),
        ("HTS ID moademo", "으로/로", "로"),
        ("URL", "으로/로", "로"),
        ("URL", "이/가", "이"),
        ("CAM", "을/를", "을"),
        # Closing brackets and quotes are skipped.
        ("삼성전자 (005930)", "을/를", "을"),
    ],
)
def test_particle_follows_the_final_sound(word: str, pair: str, expected: str) -> None:
    assert particle(word, pair) == expected


def test_an_unreadable_ending_shows_both_forms() -> None:
    assert with_particle("★", "이/가") == "★이(가)"


def test_an_unknown_pair_is_a_bug() -> None:
    with pytest.raises(ValueError):
        particle("키", "에/에게")


def test_catalog_texts_choose_their_particles() -> None:
    assert t("ko", "keys.secret_deleted", what="App Key").startswith("App Key가 담긴")
    assert "HTS ID 12345678을 거부" in t("ko", "check.fill_refused", hts_id="12345678",
                                          reason="-")
    assert "HTS ID moademo로 구독" in t("ko", "check.fill_ok", hts_id="moademo")
    assert "이(가)" not in t("ko", "keys.secret_not_deleted", what="App Secret")


@pytest.mark.parametrize(
    ("seconds", "ko", "en"),
    [
        (45, "45초", "45 s"),
        (185, "3분 5초", "3 min 5 s"),
        (3600, "1시간", "1 h"),
        (218559049, "2,529일 14시간 50분", "2,529 d 14 h 50 min"),
    ],
)
def test_durations_read_as_days_hours_minutes(seconds: int, ko: str, en: str) -> None:
    assert duration(seconds, "ko") == ko
    assert duration(seconds, "en") == en


def test_a_stale_refusal_never_shows_a_raw_count_of_seconds() -> None:
    text = t("ko", "reason.stale", lag="218559049", max_lag="60")
    assert "218559049" not in text
    assert "2,529일" in text and "1분" in text
