"""`moahook demo`: the scripted offline tour."""

from __future__ import annotations

import sys


def run_demo() -> int:
    print("moahook demo: the offline tour is not built yet; `moahook --help` lists commands.")
    return 0 if sys.argv else 1
