"""RateLimiter on virtual time: exact spacing, FIFO, no bursts; and through KisClient."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from kis.client import PRICE_PATH, KisClient
from kis.env import Endpoints, Environment
from kis.models import AppCredentials
from kis.ratelimit import RateLimiter
from kis.secret import Secret
from kis.tokenstore import MemoryTokenStore

EPS = 1e-9


class VirtualTime:
    """Sleepers wake in time order; time jumps straight to the next wake-up."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def clock(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return datetime(2026, 3, 2, tzinfo=UTC) + timedelta(seconds=self.now)

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self.now + max(seconds, 0.0), self._seq, future))
        self._seq += 1
        await future

    async def _settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    async def run(self, *aws: Awaitable[object]) -> list[object]:
        tasks = [asyncio.ensure_future(aw) for aw in aws]

        async def drive() -> list[object]:
            while True:
                await self._settle()
                if all(task.done() for task in tasks):
                    return [task.result() for task in tasks]
                if not self._heap:
                    continue  # tasks still busy with real (non-sleeping) work
                when, _, future = heapq.heappop(self._heap)
                self.now = max(self.now, when)
                if not future.cancelled():
                    future.set_result(None)

        return await asyncio.wait_for(drive(), 20)


async def stamped(
    limiter: RateLimiter, vt: VirtualTime, stamps: list[tuple[int, float]], i: int
) -> None:
    await limiter.acquire()
    stamps.append((i, vt.now))


def assert_within_rate(times: list[float], rate: float) -> None:
    interval = 1.0 / rate
    for a, b in zip(times, times[1:], strict=False):
        assert b - a >= interval - EPS
    per_second = int(rate + EPS)
    # Any window of one second holds at most `rate` calls.
    for i in range(len(times) - per_second):
        assert times[i + per_second] - times[i] >= 1.0 - EPS


@pytest.mark.parametrize("rate", [19.0, 2.0])
async def test_200_concurrent_acquires_hold_the_rate_exactly(rate: float) -> None:
    vt = VirtualTime()
    limiter = RateLimiter(rate, clock=vt.clock, sleep=vt.sleep)
    stamps: list[tuple[int, float]] = []
    await vt.run(*(stamped(limiter, vt, stamps, i) for i in range(200)))
    assert len(stamps) == 200
    assert [i for i, _ in stamps] == list(range(200))  # FIFO: served in arrival order
    times = [t for _, t in stamps]
    assert times[0] == 0.0
    assert_within_rate(times, rate)
    # Not slower than the rate either: the last call starts at exactly 199 intervals.
    assert times[-1] == pytest.approx(199 / rate)


async def test_no_burst_after_a_quiet_period() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(10.0, clock=vt.clock, sleep=vt.sleep)
    stamps: list[tuple[int, float]] = []
    await vt.run(stamped(limiter, vt, stamps, 0))
    vt.now = 60.0  # a long idle minute earns no credit
    await vt.run(*(stamped(limiter, vt, stamps, i) for i in range(1, 4)))
    assert [t for _, t in stamps] == pytest.approx([0.0, 60.0, 60.1, 60.2])


async def test_a_cancelled_waiter_never_lets_others_go_faster() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(5.0, clock=vt.clock, sleep=vt.sleep)
    stamps: list[tuple[int, float]] = []
    await vt.run(stamped(limiter, vt, stamps, 0))
    victim = asyncio.ensure_future(stamped(limiter, vt, stamps, 1))
    await asyncio.sleep(0)  # the victim books the slot at 0.2 and sleeps
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await victim
    await vt.run(*(stamped(limiter, vt, stamps, i) for i in range(2, 5)))
    assert [i for i, _ in stamps] == [0, 2, 3, 4]
    # The cancelled slot stays spent: never closer than the interval.
    assert [t for _, t in stamps] == pytest.approx([0.0, 0.4, 0.6, 0.8])


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


async def test_200_concurrent_client_calls_reach_kis_at_the_key_rate() -> None:
    """Measured where it matters: when each request reaches the (mocked) KIS server."""
    vt = VirtualTime()
    endpoints = Endpoints(rest={Environment.REAL: "https://kis.test", Environment.PAPER:
                                "https://paper.kis.test"}, ws={})
    arrivals: dict[str, list[float]] = {"A": [], "B": []}

    def answer(request: httpx.Request) -> httpx.Response:
        arrivals[request.headers["appkey"][-1]].append(vt.now)
        return httpx.Response(200, json={"rt_cd": "0", "msg_cd": "", "msg1": "",
                                         "output": {"stck_prpr": "100"}})

    key_a = AppCredentials("keyA" * 8 + "000A", Secret("s" * 180), Environment.REAL)
    key_b = AppCredentials("keyB" * 8 + "000B", Secret("t" * 180), Environment.REAL)
    with respx.mock(assert_all_mocked=True) as router:
        router.post("https://kis.test/oauth2/tokenP").mock(return_value=httpx.Response(200, json={
            "access_token": "tok12345678", "access_token_token_expired": "2030-01-01 00:00:00",
        }))
        router.get("https://kis.test" + PRICE_PATH).mock(side_effect=answer)
        async with httpx.AsyncClient() as http:
            client = KisClient(endpoints=endpoints, http=http, token_store=MemoryTokenStore(),
                               clock=vt.clock, sleep=vt.sleep, now=vt.wall)
            await vt.run(
                *(client.price(key_a if i % 4 else key_b, "005930") for i in range(200))
            )
    assert len(arrivals["A"]) == 150 and len(arrivals["B"]) == 50
    for times in arrivals.values():
        assert_within_rate(sorted(times), 19.0)
    # The two keys have separate limiters: B is not queued behind A.
    assert max(arrivals["B"]) == pytest.approx(49 / 19.0)


async def test_late_wakeups_never_release_more_than_the_limit_in_a_second() -> None:
    """A stalled event loop wakes sleepers late and together; the releases still keep
    to KIS's per-second limit in every one-second window."""

    now = 0.0
    stall_every = 7

    def clock() -> float:
        return now

    calls = 0

    async def late_sleep(delay: float) -> None:
        nonlocal now, calls
        calls += 1
        # every few sleeps the loop stalls for 120 ms on top of the delay
        now += delay + (0.12 if calls % stall_every == 0 else 0.0)
        await asyncio.sleep(0)

    limiter = RateLimiter(19.0, clock=clock, sleep=late_sleep, per_second=20)
    released: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        released.append(now)

    await asyncio.gather(*(one() for _ in range(200)))
    released.sort()
    for i, start in enumerate(released):
        in_window = [t for t in released[i:] if t < start + 1.0]
        assert len(in_window) <= 20
