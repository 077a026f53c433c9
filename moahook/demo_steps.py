"""Numbered, timed steps for `moahook demo`: `[n/N] title … ✓ 0.31s`, or ✗ and why."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TextIO


class StepFailed(Exception):
    """A step did not happen as expected; the message says what was expected and what
    happened instead (never a secret)."""


class DemoFailed(Exception):
    """The tour stopped at step `number`."""

    def __init__(self, number: int, detail: str) -> None:
        super().__init__(f"step {number}: {detail}")
        self.number = number
        self.detail = detail


class Steps:
    """Prints one progress line per step as it runs; the first failure stops the tour."""

    def __init__(
        self, total: int, out: TextIO, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self._out = out
        self._clock = clock
        self._started = clock()
        self.done = 0

    def elapsed(self) -> float:
        return self._clock() - self._started

    @contextlib.asynccontextmanager
    async def step(self, title: str) -> AsyncIterator[None]:
        number = self.done + 1
        if number > self.total:
            raise RuntimeError(f"more steps than announced ({self.total})")
        self._write(f"[{number}/{self.total}] {title} … ")
        began = self._clock()
        try:
            yield
        except StepFailed as exc:
            self._write(f"✗ {self._clock() - began:.2f}s\n")
            raise DemoFailed(number, str(exc)) from None
        except TimeoutError as exc:
            self._write(f"✗ {self._clock() - began:.2f}s\n")
            # The first line only: the stand-in appends the whole chat, printed later anyway.
            first = str(exc).split("\n", 1)[0].rstrip(":; ")
            raise DemoFailed(number, f"timed out: {first or 'no answer in time'}") from None
        except Exception as exc:
            self._write(f"✗ {self._clock() - began:.2f}s\n")
            raise DemoFailed(number, f"{type(exc).__name__}: {exc}") from exc
        self.done = number
        self._write(f"✓ {self._clock() - began:.2f}s\n")

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()
