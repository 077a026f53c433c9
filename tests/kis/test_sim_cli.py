"""`moahook sim` as a subprocess: the lines it prints first, and a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from kis.sim import DEMO_APP_KEY, DEMO_APP_SECRET

NAMES = [
    "MOAHOOK_KIS_REAL_URL",
    "MOAHOOK_KIS_PAPER_URL",
    "MOAHOOK_KIS_REAL_WS_URL",
    "MOAHOOK_KIS_PAPER_WS_URL",
    "SIM_APP_KEY",
    "SIM_APP_SECRET",
    "SIM_ACCOUNT",
    "SIM_HTS_ID",
]


def moahook() -> list[str]:
    script = Path(sys.executable).parent / "moahook"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "moahook.cli"]


def test_moahook_sim_prints_the_lines_and_serves() -> None:
    process = subprocess.Popen(
        [*moahook(), "sim"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "0"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().rstrip("\n") for _ in NAMES]
        values = dict(line.split("=", 1) for line in lines)
        assert [line.split("=", 1)[0] for line in lines] == NAMES
        assert values["SIM_APP_KEY"] == DEMO_APP_KEY
        assert values["SIM_APP_SECRET"] == DEMO_APP_SECRET
        assert values["SIM_ACCOUNT"] == "12345678-01"
        assert values["SIM_HTS_ID"] == "moademo"
        assert values["MOAHOOK_KIS_PAPER_URL"].startswith("http://127.0.0.1:")
        assert values["MOAHOOK_KIS_PAPER_URL"].endswith("/paper")
        assert values["MOAHOOK_KIS_REAL_WS_URL"].startswith("ws://127.0.0.1:")
        # It really serves: the demo key gets a token on the paper URL.
        answer = httpx.post(
            values["MOAHOOK_KIS_PAPER_URL"] + "/oauth2/tokenP",
            json={
                "grant_type": "client_credentials",
                "appkey": values["SIM_APP_KEY"],
                "appsecret": values["SIM_APP_SECRET"],
            },
            timeout=5,
        )
        assert answer.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
