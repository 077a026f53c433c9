"""`moahook serve` as a separate process, as an operator runs it (tests' harness)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

READY_LINE = "moahook serving on"


def _die_with_parent() -> None:
    """Linux: the serve process gets SIGKILL when the test process dies, even by kill -9
    or a timeout, so no instance outlives its test and goes on holding leases."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without any MOAHOOK_* variable, plus `overrides`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MOAHOOK_")}
    env.update(overrides)
    return env


class ServeProcess:
    """One `moahook serve`; its stderr (the log) is collected as it comes."""

    def __init__(self, env: dict[str, str], cwd: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = {**env, "MOAHOOK_HOST": "127.0.0.1", "MOAHOOK_PORT": str(self.port)}
        self.cwd = cwd
        self.lines: list[str] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def start(self, *, ready_within: float | None = 30.0) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "moahook.cli", "serve",
            cwd=self.cwd, env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        self._reader = asyncio.create_task(self._read())
        if ready_within is not None:
            await self.wait_for_line(READY_LINE, ready_within)

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while True:
            raw = await self._proc.stderr.readline()
            async with self._changed:
                if raw:
                    self.lines.append(raw.decode(errors="replace"))
                self._changed.notify_all()
            if not raw:
                return

    async def wait_for_line(self, marker: str, within: float) -> str:
        """The first line containing `marker`; AssertionError if the process ends first."""

        def found() -> str | None:
            return next((line for line in self.lines if marker in line), None)

        async def wait() -> str:
            async with self._changed:
                while True:
                    line = found()
                    if line is not None:
                        return line
                    if self._reader is not None and self._reader.done():
                        raise AssertionError(f"serve ended before {marker!r}:\n{self.output}")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), within)
        except TimeoutError:
            raise AssertionError(f"no {marker!r} within {within}s:\n{self.output}") from None

    async def wait(self, within: float) -> int:
        assert self._proc is not None
        code = await asyncio.wait_for(self._proc.wait(), within)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, within)
        return code

    def signal(self, sig: int) -> None:
        assert self._proc is not None
        self._proc.send_signal(sig)

    async def stop(self, within: float = 30.0) -> int:
        self.signal(signal.SIGTERM)
        return await self.wait(within)

    async def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self.wait(30.0)

    async def close(self) -> None:
        with contextlib.suppress(ProcessLookupError, TimeoutError):
            await self.kill()
