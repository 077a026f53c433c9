"""Seeded fuzz over a real socket: 5,000 malformed bodies, no 5xx, the server keeps answering."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter
from datetime import datetime

from aiohttp import ClientSession, ClientTimeout
from aiohttp.test_utils import TestServer

from webhook_server.alert import Alert
from webhook_server.app import create_app
from webhook_server.intake import UNKNOWN_TOKEN, Accepted, IntakeResult
from webhook_server.metrics import Metrics

TOKEN = "fuzz_token_0123456789abcdef"
SEED = 20240102
BODIES = 5_000
FIELDS = ["ticker", "action", "quantity", "amount", "position", "order_type", "price", "id",
          "time", "max_lag", "comment"]
VALID = {"ticker": "KRX:005930", "action": "sell", "quantity": "50%", "order_type": "limit",
         "price": "71234", "id": "x1", "time": "2024-01-02T03:04:05Z", "max_lag": 60}


class CountingIntake:
    def __init__(self) -> None:
        self.accepted = 0

    async def submit(
        self, token: str, body: bytes, alert: Alert, received_at: datetime, client: str = ""
    ) -> IntakeResult:
        if token != TOKEN:
            return UNKNOWN_TOKEN
        self.accepted += 1
        return Accepted(f"a{self.accepted}")


async def healthy() -> tuple[bool, str]:
    return True, ""


def weird_value(rng: random.Random, depth: int = 0) -> object:
    choice = rng.randrange(16)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.randint(-(10**30), 10**30)
    if choice == 3:
        return rng.choice([1e308, -1e308, 5e-324, 0.0, -0.0, 0.5, 1.5, 71234.56])
    if choice == 4:
        return rng.choice(["NaN", "Infinity", "-Infinity", "1e999999", "1e-999999", "0x10",
                           "1_000", "1,000", "1,00", "٣", "½", " ", "", "-0", "+5", "5%%"])
    if choice == 5:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(12)))
    if choice == 6:
        return rng.choice(["{{ticker}}", "{{strategy.order.action}}", "{{close}}", "all",
                           "ALL", "50%", "0%", "101%", "buy", "sell", "limit", "market",
                           "KRX:005930", "A0126Z0", "2024-01-02T03:04:05Z", "9999-99-99"])
    if choice == 7 and depth < 3:
        return [weird_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if choice == 8 and depth < 3:
        return {rng.choice(FIELDS): weird_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    if choice == 9:
        return "x" * rng.choice([127, 128, 129, 499, 500, 501, 5000])
    if choice == 10:
        return "\ud800" + "\u0000"
    return rng.choice([0, 1, -1, 2**63, 10**18, 10**19, 7, 100])


def body(rng: random.Random) -> bytes:
    kind = rng.randrange(12)
    valid = json.dumps(VALID).encode()
    if kind == 0:
        return rng.randbytes(rng.randrange(300))
    if kind == 1:
        return valid[: rng.randrange(len(valid))]
    if kind == 2:  # one field replaced by something odd
        message: dict[str, object] = dict(VALID)
        message[rng.choice(FIELDS)] = weird_value(rng)
        return json.dumps(message).encode()
    if kind == 3:  # random message from random values
        fields = {rng.choice(FIELDS): weird_value(rng) for _ in range(rng.randrange(8))}
        return json.dumps(fields).encode()
    if kind == 4:  # huge / non-finite numbers as raw JSON tokens
        token = rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 5000,
                            "1" + "0" * 4299, "0.000000000000000000000000001", "1E+999999999"])
        return f'{{"ticker":"005930","action":"buy","{rng.choice(FIELDS)}":{token}}}'.encode()
    if kind == 5:  # deep nesting
        depth = rng.randrange(1, 8000)
        opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
        return (opener * depth + "1" + closer * rng.randrange(depth + 1)).encode()
    if kind == 6:  # unquoted placeholders
        return rng.choice([
            b'{"ticker": 005930, "action": "buy", "quantity": 1}',
            b'{"ticker": {{ticker}}, "action": {{strategy.order.action}}, "quantity": 1}',
            b'{"ticker": "005930", "action": buy, "quantity": {{strategy.order.contracts}}}',
        ])
    if kind == 7:  # byte flips in a valid message
        raw = bytearray(valid)
        for _ in range(rng.randrange(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    if kind == 8:  # non-UTF-8 encodings of a valid message
        text = json.dumps({**VALID, "comment": "매수 신호 ✓"}, ensure_ascii=False)
        return text.encode(rng.choice(["utf-16", "utf-32", "cp949", "latin-1", "utf-8-sig"]),
                           errors="replace")
    if kind == 9:  # right around the size limit
        size = rng.choice([16_383, 16_384, 16_385, 20_000])
        pad = "y" * max(0, size - len(valid) - 10)
        return json.dumps({**VALID, "pad": pad}).encode()[:size]
    if kind == 10:  # not an object
        return json.dumps(weird_value(rng)).encode()
    return valid


async def test_5000_malformed_bodies_never_5xx() -> None:
    rng = random.Random(SEED)
    bodies = [body(rng) for _ in range(BODIES)]
    content_types = ["text/plain", "application/json", "application/octet-stream", ""]
    intake = CountingIntake()
    app = create_app(intake=intake, metrics=Metrics(), health=healthy)
    errors: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record)

    handler = Collect(logging.ERROR)
    logging.getLogger().addHandler(handler)
    statuses: Counter[int] = Counter()
    try:
        async with TestServer(app, host="127.0.0.1", port=0) as server, ClientSession(
            timeout=ClientTimeout(total=10)
        ) as session:
            url = server.make_url(f"/hook/{TOKEN}")
            limit = asyncio.Semaphore(16)

            async def send(index: int, raw: bytes) -> None:
                headers = {"Content-Type": content_types[index % len(content_types)]}
                async with limit, session.post(url, data=raw, headers=headers) as response:
                    await response.read()
                    statuses[response.status] += 1

            await asyncio.gather(*(send(i, raw) for i, raw in enumerate(bodies)))
            async with session.get(server.make_url("/healthz")) as response:
                assert response.status == 200
            async with session.post(url, json={"ticker": "005930", "action": "buy",
                                               "quantity": 1}) as response:
                assert response.status == 200
    finally:
        logging.getLogger().removeHandler(handler)

    assert sum(statuses.values()) == BODIES
    assert set(statuses) <= {200, 400, 413}, statuses
    assert statuses[400] > BODIES // 2 and statuses[200] > 0 and statuses[413] > 0
    assert intake.accepted == statuses[200] + 1
    assert errors == [], [record.getMessage() for record in errors]

