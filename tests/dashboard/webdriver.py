"""A small asyncio client of the W3C WebDriver protocol, for driving Debian's headless
Chromium through chromedriver in the browser tests.

Why not selenium: its client blocks, and these tests serve the dashboard from the
same event loop that drives the browser — a blocking call would stall the very server
the browser is waiting for. The protocol is a handful of JSON requests, so an aiohttp
client is all it takes; nothing is downloaded (selenium's driver manager would try).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import aiohttp

ELEMENT: Final = "element-6066-11e4-a52e-4f735466cecf"
# This machine's network refuses Chromium's background connections: keep it from trying.
CHROMIUM_FLAGS: Final = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage", "--hide-scrollbars",
)
START_TIMEOUT_S: Final = 30.0


class WebDriverError(Exception):
    pass


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths, or None when either is not installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        return None
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Element:
    session: Session
    id: str

    async def click(self) -> None:
        await self.session.call("POST", f"/element/{self.id}/click", {})

    async def type(self, text: str) -> None:
        await self.session.call("POST", f"/element/{self.id}/value", {"text": text})

    async def clear(self) -> None:
        await self.session.call("POST", f"/element/{self.id}/clear", {})

    async def text(self) -> str:
        return str(await self.session.call("GET", f"/element/{self.id}/text"))


class Session:
    def __init__(self, http: aiohttp.ClientSession, base: str, session_id: str) -> None:
        self._http = http
        self._base = f"{base}/session/{session_id}"

    async def call(self, method: str, path: str, body: object = None) -> object:
        async with self._http.request(method, self._base + path, json=body) as response:
            payload = await response.json()
        value = payload.get("value") if isinstance(payload, dict) else None
        if response.status != 200:
            detail = value.get("message", value) if isinstance(value, dict) else value
            raise WebDriverError(f"{method} {path}: {response.status} {detail}")
        return value

    async def open(self, url: str) -> None:
        await self.call("POST", "/url", {"url": url})

    async def find(self, css: str) -> Element:
        value = await self.call("POST", "/element", {"using": "css selector", "value": css})
        assert isinstance(value, dict)
        return Element(self, str(value[ELEMENT]))

    async def run(self, script: str, *args: object) -> object:
        return await self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    async def wait_for(self, script: str, *args: object, timeout: float = 10.0) -> object:  # noqa: ASYNC109
        """Until `script` returns something truthy in the page; returns it (bounded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.run(script, *args)
            if value:
                return value
            if loop.time() > deadline:
                page = await self.run("return document.body.innerText")
                raise TimeoutError(f"waited {timeout}s for: {script}\nthe page shows:\n{page}")
            await asyncio.sleep(0.05)  # the page's own timers run meanwhile

    async def set_window(self, width: int, height: int) -> None:
        await self.call("POST", "/window/rect", {"width": width, "height": height})

    async def screenshot(self) -> bytes:
        return base64.b64decode(str(await self.call("GET", "/screenshot")))

    async def full_screenshot(self, width: int) -> bytes:
        """The whole page at `width`: the window grown to the document's height first."""
        await self.set_window(width, 900)
        needed = await self.run(
            "return document.documentElement.scrollHeight + "
            "(window.outerHeight - window.innerHeight)"
        )
        await self.set_window(width, int(needed))  # type: ignore[call-overload]
        return await self.screenshot()

    async def console_errors(self) -> list[str]:
        """Severe console entries since the last call: JavaScript errors, failed loads,
        Content-Security-Policy violations."""
        entries = await self.call("POST", "/se/log", {"type": "browser"})
        assert isinstance(entries, list)
        return [str(e.get("message")) for e in entries if e.get("level") == "SEVERE"]


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


@contextlib.asynccontextmanager
async def chromium(paths: tuple[str, str]) -> AsyncIterator[Session]:
    """chromedriver on a free loopback port and one headless Chromium session with a
    fresh profile; both gone afterwards."""
    browser, driver = paths
    port = _free_port()
    profile = tempfile.TemporaryDirectory(prefix="moahook-chromium-")
    process = await asyncio.create_subprocess_exec(
        driver, f"--port={port}", "--allowed-ips=127.0.0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "HOME": profile.name},
    )
    drain: asyncio.Task[None] | None = None
    try:
        assert process.stdout is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            while b"started successfully" not in (line := await process.stdout.readline()):
                if not line:
                    raise WebDriverError("chromedriver exited before it started")
        # chromedriver keeps writing: its pipe must not fill up and stall it.
        drain = asyncio.create_task(_drain(process.stdout))
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            capabilities = {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": browser,
                    "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile.name}"],
                },
                "goog:loggingPrefs": {"browser": "ALL"},
            }
            async with http.post(
                f"{base}/session", json={"capabilities": {"alwaysMatch": capabilities}}
            ) as response:
                created = await response.json()
            if response.status != 200:
                raise WebDriverError(f"no browser session: {created}")
            session_id = str(created["value"]["sessionId"])
            try:
                yield Session(http, base, session_id)
            finally:
                with contextlib.suppress(Exception):
                    async with http.delete(f"{base}/session/{session_id}"):
                        pass
    finally:
        if drain is not None:
            drain.cancel()
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), 10)
        if process.returncode is None:
            process.kill()
            await process.wait()
        profile.cleanup()
