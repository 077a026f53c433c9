"""Korean particles chosen by the preceding word's final sound, and durations. Pure.

A particle pair (이/가, 을/를, 은/는, 으로/로) takes its first form after a final
consonant (받침) and its second after a vowel; 으로/로 also takes 로 after ㄹ. Hangul is
read by its final consonant; digits and Latin letters by how Koreans read them aloud:
digits in Sino-Korean (`8` 팔), an acronym letter by letter (`ID` 아이디, `URL` 유알엘),
an English word as it is usually transcribed (`Key` 키, `Secret` 시크릿, `token` 토큰).
"""

from __future__ import annotations

import enum
from typing import Final

PAIRS: Final = ("이/가", "을/를", "은/는", "과/와", "으로/로")


class Sound(enum.Enum):
    VOWEL = "vowel"
    RIEUL = "rieul"  # ㄹ: a consonant, but 으로/로 takes 로 after it
    CONSONANT = "consonant"


_HANGUL_FIRST: Final = 0xAC00
_HANGUL_LAST: Final = 0xD7A3
_RIEUL_INDEX: Final = 8  # ㄹ among the 28 final-consonant slots (0 = none)

# Digits as read in Sino-Korean: 영 일 이 삼 사 오 육 칠 팔 구.
_DIGITS: Final = {
    "0": Sound.CONSONANT, "1": Sound.RIEUL, "2": Sound.VOWEL, "3": Sound.CONSONANT,
    "4": Sound.VOWEL, "5": Sound.VOWEL, "6": Sound.CONSONANT, "7": Sound.RIEUL,
    "8": Sound.RIEUL, "9": Sound.VOWEL,
}
# A number ending in zeros is read by its last place: 십 백 천 만 …, 억, 조.
_PLACES: Final = {1: Sound.CONSONANT, 2: Sound.CONSONANT, 3: Sound.CONSONANT}
# Latin letters by their Korean names: 엘 엠 엔 알 end in a consonant, the rest in a vowel.
_LETTERS: Final = {"l": Sound.RIEUL, "r": Sound.RIEUL, "m": Sound.CONSONANT,
                   "n": Sound.CONSONANT}
# English word endings transcribed with a final consonant (book 북, secret 시크릿, lab 랩).
_STOPS: Final = frozenset("bckpt")
_SKIPPED: Final = " \t\n)]}>\"'”’」』.,!?:;"


def final_sound(word: str) -> Sound | None:
    """How `word` ends when read aloud; None when it ends in something unreadable."""
    text = word.rstrip(_SKIPPED)
    if not text:
        return None
    last = text[-1]
    code = ord(last)
    if _HANGUL_FIRST <= code <= _HANGUL_LAST:
        jong = (code - _HANGUL_FIRST) % 28
        if jong == 0:
            return Sound.VOWEL
        return Sound.RIEUL if jong == _RIEUL_INDEX else Sound.CONSONANT
    if last.isascii() and last.isdigit():
        return _number_final(text)
    if last.isascii() and last.isalpha():
        return _latin_final(text)
    return None


def _latin_final(text: str) -> Sound:
    word = ""
    for char in reversed(text):
        if not (char.isascii() and char.isalpha()):
            break
        word = char + word
    if len(word) == 1 or word.isupper():  # an acronym: read letter by letter
        return _LETTERS.get(word[-1].lower(), Sound.VOWEL)
    lower = word.lower()
    if lower.endswith("l"):
        return Sound.RIEUL
    if lower.endswith(("m", "n", "ng")) or lower[-1] in _STOPS:
        return Sound.CONSONANT  # 토큰, 북, 시크릿, 랩
    return Sound.VOWEL  # 키, 코드, 오더 (a final r is silent)


def _number_final(text: str) -> Sound:
    digits = ""
    for char in reversed(text):
        if char.isascii() and char.isdigit():
            digits = char + digits
        elif char != ",":
            break
    significant = digits.rstrip("0")
    if not significant:
        return Sound.CONSONANT  # 영
    zeros = len(digits) - len(significant)
    if zeros == 0:
        return _DIGITS[digits[-1]]
    if zeros in _PLACES:
        return _PLACES[zeros]
    if zeros % 4 == 0:  # 만, 억 end in a consonant; 조 (12 zeros) in a vowel
        return Sound.VOWEL if zeros % 12 == 0 else Sound.CONSONANT
    return Sound.CONSONANT  # 십만, 백만, 천만 …: 만 again


def particle(word: str, pair: str) -> str:
    """The form of `pair` ("이/가", "을/를", "은/는", "과/와", "으로/로") that follows `word`;
    both forms as `이(가)` when the word's final sound cannot be told."""
    if pair not in PAIRS:
        raise ValueError(f"unknown particle pair {pair!r}")
    after_consonant, after_vowel = pair.split("/")
    sound = final_sound(word)
    if sound is None:
        return f"{after_consonant}({after_vowel})"
    if sound is Sound.VOWEL or (sound is Sound.RIEUL and pair == "으로/로"):
        return after_vowel
    return after_consonant


def with_particle(word: str, pair: str) -> str:
    return word + particle(word, pair)


_UNITS: Final = {
    "ko": ("{0:,}일", "{0}시간", "{0}분", "{0}초"),
    "en": ("{0:,} d", "{0} h", "{0} min", "{0} s"),
}


def duration(seconds: float, lang: str) -> str:
    """`2,529일 14시간 10분`, `3분 5초`, `45초` (and `2,529 d 14 h 10 min` in English):
    days, hours and minutes for long spans, never a raw count of seconds."""
    day, hour, minute, second = _UNITS.get(lang, _UNITS["en"])
    total = max(0, round(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if total < 60:
        return second.format(secs)
    if total < 3_600:
        parts = [minute.format(minutes)] + ([second.format(secs)] if secs else [])
        return " ".join(parts)
    parts = []
    if days:
        parts.append(day.format(days))
    if hours:
        parts.append(hour.format(hours))
    if minutes:
        parts.append(minute.format(minutes))
    return " ".join(parts)
