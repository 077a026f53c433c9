"""`moahook sim`: the simulator alone."""

from __future__ import annotations

import sys


def run_sim(port: int, ws_port: int) -> int:
    print("moahook sim: the KIS simulator is not built yet", file=sys.stderr)
    return 1
