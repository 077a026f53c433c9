"""PostgreSQL out of reach while the service runs (SPEC 12): `/hook` answers 503 — never
500, never a silent drop — and `/healthz` 503 until the database is back; then work
resumes by itself."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from tests.moahook.cluster import cluster, eventually, settled
from tests.moahook.pgdb import fresh_database
from tests.moahook.tcp_relay import TcpRelay

WAIT = 20.0


async def test_database_out_of_reach_is_503_then_work_resumes(tmp_path: Path) -> None:
    async with fresh_database() as direct:
        url = make_url(direct)
        relay = TcpRelay(url.host or "127.0.0.1", url.port or 5432)
        await relay.start()
        through = url.set(host="127.0.0.1", port=relay.port).render_as_string(
            hide_password=False
        )
        try:
            async with cluster(tmp_path, through, instances=1, users=1) as group:
                await settled(group)
                user, proc = group.users[0], group.procs[0]
                body = {"ticker": "005930", "action": "buy", "quantity": "1"}
                async with httpx.AsyncClient(base_url=proc.url, timeout=10) as http:
                    await relay.cut()
                    answer = await http.post(f"/hook/{user.token}", content=json.dumps(body))
                    assert answer.status_code == 503, answer.text
                    assert "send it again" in answer.json()["error"]
                    health = await http.get("/healthz")
                    assert health.status_code == 503
                    assert health.json()["reason"] == "database unreachable"
                    await relay.restore()

                    async def healthy() -> bool:
                        return (await http.get("/healthz")).status_code == 200

                    await eventually(healthy, WAIT)
                    answer = await http.post(
                        f"/hook/{user.token}", content=json.dumps({**body, "id": "after"})
                    )
                    assert answer.status_code == 200, answer.text
                await group.sim.wait_for(lambda: len(group.sim.orders) == 1, WAIT)
                assert "Traceback" not in proc.output
        finally:
            await relay.close()
