"""`moahook serve` as an operator runs it: a separate process, configured only through
MOAHOOK_* variables, stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from bot.standin import BotApiStandIn
from kis.sim import KisSimulator
from storage.crypto import encode_master_key

# The web server listening and the bot started (either may come first).
READY_LINES = ("moahook serving on", "telegram bot @")


async def _read_until(
    stream: asyncio.StreamReader, markers: tuple[str, ...], seen: list[str]
) -> str:
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError("serve exited early:\n" + "".join(seen))
        line = raw.decode(errors="replace")
        seen.append(line)
        if any(marker in line for marker in markers):
            return line


async def test_serve_process_starts_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with KisSimulator() as sim, BotApiStandIn() as standin:
        port = _free_port()
        env = {
            key: value for key, value in os.environ.items() if not key.startswith("MOAHOOK_")
        }
        env.update(sim.env_vars())
        env.update(
            {
                "MOAHOOK_BOT_TOKEN": standin.token,
                "MOAHOOK_TELEGRAM_API_URL": standin.base_url,
                "MOAHOOK_DATA_DIR": str(tmp_path / "data"),
                "MOAHOOK_HOST": "127.0.0.1",
                "MOAHOOK_PORT": str(port),
                "MOAHOOK_MARKET_HOURS": "off",
                "MOAHOOK_LOG_LEVEL": "INFO",
            }
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "moahook.cli", "serve",
            cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        seen: list[str] = []
        try:
            for _ in READY_LINES:
                await asyncio.wait_for(_read_until(proc.stderr, READY_LINES, seen), 30)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                health = await http.get("/healthz")
            assert health.status_code == 200, health.text
            key_file = tmp_path / "data" / "master.key"
            assert key_file.exists()
            assert (key_file.stat().st_mode & 0o777) == 0o600
            proc.send_signal(signal.SIGTERM)
            rest = await asyncio.wait_for(proc.stderr.read(), 30)
            code = await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        output = "".join(seen) + rest.decode(errors="replace")
        assert code == 0, output
        assert "Traceback" not in output
        assert standin.token.split(":")[1] not in output


def test_a_bad_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    import subprocess

    env = {key: value for key, value in os.environ.items() if not key.startswith("MOAHOOK_")}
    env.update({"MOAHOOK_PORT": "eighty", "MOAHOOK_MASTER_KEY": encode_master_key(b"k" * 32)})
    result = subprocess.run(
        [sys.executable, "-m", "moahook.cli", "serve"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "MOAHOOK_PORT" in lines[0]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_second_serve_on_the_same_sqlite_database_refuses_with_one_line(
    tmp_path: Path,
) -> None:
    from tests.moahook.serving import ServeProcess, base_env

    async with KisSimulator() as sim, BotApiStandIn() as standin:
        env = base_env(
            **sim.env_vars(),
            MOAHOOK_BOT_TOKEN=standin.token,
            MOAHOOK_TELEGRAM_API_URL=standin.base_url,
            MOAHOOK_DATA_DIR=str(tmp_path / "data"),
            MOAHOOK_MARKET_HOURS="off",
        )
        first, second = ServeProcess(env, tmp_path), ServeProcess(env, tmp_path)
        try:
            await first.start()
            await second.start(ready_within=None)
            assert await second.wait(30) == 2
            lines = [line for line in second.lines if line.strip()]
            assert len(lines) == 1, second.output
            assert "already using the SQLite database" in lines[0]
            assert "Traceback" not in second.output
            assert await first.stop() == 0
        finally:
            await first.close()
            await second.close()
