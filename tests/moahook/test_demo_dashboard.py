"""`moahook demo` and the dashboard: in a terminal it keeps serving until Enter, with
`--no-wait` or without a terminal it does not wait."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

READ_TIMEOUT_S = 60.0


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOAHOOK_")}
    env["TMPDIR"] = str(tmp_path)
    return env


def _read_until(fd: int, marker: bytes, seen: bytearray) -> None:
    deadline = time.monotonic() + READ_TIMEOUT_S
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {marker!r} in:\n{seen.decode(errors='replace')}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the other side closed
                chunk = b""
            if not chunk:
                raise EOFError(seen.decode(errors="replace"))
            seen += chunk


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_demo_in_a_terminal_serves_the_dashboard_until_enter(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "moahook.cli", "demo"],
        stdin=terminal, stdout=terminal, stderr=terminal, cwd=tmp_path, env=_env(tmp_path),
    )
    os.close(terminal)
    seen = bytearray()
    try:
        _read_until(controller, b"press Enter", seen)
        text = seen.decode(errors="replace")
        link = next(line for line in text.splitlines() if "/app#tgWebAppData=" in line).strip()
        # Still serving while it waits: the page answers.
        with urllib.request.urlopen(link.split("#")[0], timeout=10) as page:  # noqa: S310
            assert page.status == 200 and b"app.js" in page.read()
        os.write(controller, b"\n")
        _read_until(controller, b"demo: OK", seen)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)


def test_demo_without_a_terminal_or_with_no_wait_does_not_wait(tmp_path: Path) -> None:
    for extra in ([], ["--no-wait"]):
        result = subprocess.run(
            [sys.executable, "-m", "moahook.cli", "demo", *extra],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
            cwd=tmp_path, env=_env(tmp_path), check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "/app#tgWebAppData=" in result.stdout
        assert "press Enter" not in result.stdout
