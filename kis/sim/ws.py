"""The WebSocket side of the simulator: fill-notice subscriptions, PINGPONG, frames.

One server for both environments (`/real`, `/paper`, each also under `/tryitout`).
Cheap per connection: one handler task and a small session object; pings and
notice sending run in one task each for the whole server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from kis.env import OVERSEAS_TR_IDS, TR_IDS, Environment
from kis.sim.clock import kst
from kis.sim.notice import control_answer, data_frame, new_key_iv, pingpong

if TYPE_CHECKING:
    from kis.sim.server import KisSimulator

log = logging.getLogger(__name__)
# The library logs every frame at DEBUG: subscription answers carry the AES key and iv.
_PROTOCOL_LOG = logging.getLogger("kis.sim.ws.protocol")
_PROTOCOL_LOG.addFilter(lambda record: record.levelno >= logging.INFO)

PATHS = {
    f"/{env.value}{suffix}": env for env in Environment for suffix in ("", "/", "/tryitout")
}


@dataclass(slots=True, eq=False)
class Session:
    conn: ServerConnection
    env: Environment
    app_key: str = field(default="", repr=False)
    hts_id: str = ""
    # (tr_id, tr_key) -> (key, iv)
    subscriptions: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    pending_pings: dict[str, float] = field(default_factory=dict)


class WsServer:
    def __init__(
        self,
        sim: KisSimulator,
        *,
        ping_interval_s: float,
        pong_timeout_s: float,
        slot_hold_s: float,
        wrong_hts_id: str,
    ) -> None:
        self._sim = sim
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.slot_hold_s = slot_hold_s
        self.wrong_hts_id = wrong_hts_id  # "refuse" or "silent_drop"
        self._server: Server | None = None
        self._sessions: set[Session] = set()
        # A second session for an app key while one is live (KIS answers OPSP8996): how
        # often each key was refused so (tests: never two sessions per key).
        self.in_use_refusals: dict[str, int] = {}
        self._by_app_key: dict[str, Session] = {}
        self._released: dict[str, float] = {}
        # (env, hts_id) -> sessions subscribed to that HTS ID's fill notices
        self._subscribers: dict[tuple[Environment, str], set[Session]] = {}
        self._outbox: asyncio.Queue[tuple[Session, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: set[asyncio.Task[None]] = set()
        self.pongs: dict[str, int] = {}
        self.pings: dict[str, int] = {}
        self.port = 0

    # -- life cycle ---------------------------------------------------------------------
    async def start(self, host: str, port: int) -> None:
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._check_path,
            ping_interval=None,  # KIS pings at the application level (PINGPONG)
            max_queue=4,
            compression=None,
            logger=_PROTOCOL_LOG,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks = [
            asyncio.create_task(self._send_loop(), name="kis-sim-ws-send"),
            asyncio.create_task(self._ping_loop(), name="kis-sim-ws-ping"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @staticmethod
    def _check_path(conn: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?")[0] not in PATHS:
            return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    # -- queries for the simulator ------------------------------------------------------
    def connected(self, app_key: str) -> bool:
        return app_key in self._by_app_key

    def subscribed(self, app_key: str) -> bool:
        """A session of this app key has its fill notices registered."""
        session = self._by_app_key.get(app_key)
        return session is not None and bool(session.subscriptions)

    def connection_count(self) -> int:
        return len(self._sessions)

    def drop(self, app_key: str | None = None) -> int:
        """Drop connections (one app key's, or all) without a close frame."""
        victims = [s for s in self._sessions if app_key is None or s.app_key == app_key]
        for session in victims:
            self._abort(session)
        return len(victims)

    @staticmethod
    def _abort(session: Session) -> None:
        session.conn.transport.abort()

    def publish(self, env: Environment, hts_id: str, fields: list[str], tr_id: str) -> int:
        """Queue one record of `tr_id` for every session subscribed to it with `hts_id`."""
        delivered = 0
        for session in self._subscribers.get((env, hts_id), set()):
            key_iv = session.subscriptions.get((tr_id, hts_id))
            if key_iv is None:
                continue  # subscribed to the other market's notices only
            key, iv = key_iv
            self._outbox.put_nowait((session, data_frame(tr_id, [fields], key, iv)))
            delivered += 1
        return delivered

    # -- per connection ------------------------------------------------------------------
    async def _handle(self, conn: ServerConnection) -> None:
        env = PATHS[conn.request.path.split("?")[0]] if conn.request else Environment.PAPER
        session = Session(conn, env)
        self._sessions.add(session)
        try:
            async for message in conn:
                if isinstance(message, str):
                    await self._on_text(session, message)
        except ConnectionClosed:
            pass
        finally:
            self._forget(session)

    def _forget(self, session: Session) -> None:
        self._sessions.discard(session)
        for _tr_id, tr_key in session.subscriptions:
            subscribers = self._subscribers.get((session.env, tr_key))
            if subscribers is not None:
                subscribers.discard(session)
                if not subscribers:
                    del self._subscribers[(session.env, tr_key)]
        session.subscriptions.clear()
        if session.app_key and self._by_app_key.get(session.app_key) is session:
            del self._by_app_key[session.app_key]
            self._released[session.app_key] = asyncio.get_running_loop().time()
        self._sim.notify_changed()

    async def _on_text(self, session: Session, text: str) -> None:
        if text in session.pending_pings:
            del session.pending_pings[text]
            if session.app_key:
                self.pongs[session.app_key] = self.pongs.get(session.app_key, 0) + 1
            self._sim.notify_changed()
            return
        try:
            message = json.loads(text)
            header = message["header"]
            tr_type = str(header["tr_type"])
            approval_key = str(header["approval_key"])
            body_input = message["body"]["input"]
            tr_id = str(body_input["tr_id"])
            tr_key = str(body_input["tr_key"])
        except (ValueError, KeyError, TypeError):
            await self._answer(session, "", "", "1", "OPSP9999", "JSON PARSING ERROR")
            return
        if tr_type == "1":
            await self._subscribe(session, approval_key, tr_id, tr_key)
        elif tr_type == "2":
            await self._unsubscribe(session, tr_id, tr_key)
        else:
            await self._answer(session, tr_id, tr_key, "1", "OPSP9999", "invalid tr_type")

    async def _answer(
        self,
        session: Session,
        tr_id: str,
        tr_key: str,
        rt_cd: str,
        msg_cd: str,
        msg1: str,
        output: dict[str, str] | None = None,
    ) -> None:
        with contextlib.suppress(ConnectionClosed):
            await session.conn.send(control_answer(tr_id, tr_key, rt_cd, msg_cd, msg1, output))

    async def _subscribe(
        self, session: Session, approval_key: str, tr_id: str, tr_key: str
    ) -> None:
        answer = self._answer
        fault = self._sim.faults.take("ws")
        if fault is not None:
            if fault.kind == "silent_drop":
                self._abort(session)
                return
            if fault.kind == "refuse_tr_key":
                await answer(session, tr_id, tr_key, "1", "OPSP8993", "invalid tr_key")
                return
            if fault.kind == "already_in_use":
                await answer(session, tr_id, tr_key, "1", "OPSP8996", "ALREADY IN USE appkey")
                return
            if fault.kind.startswith("OPSP"):
                msg1 = fault.param_str("msg1", "simulated refusal")
                await answer(session, tr_id, tr_key, "1", fault.kind, msg1)
                return
        app_key = self._sim.credentials.approval_owner(session.env, approval_key)
        if app_key is None:
            await answer(session, tr_id, tr_key, "1", "OPSP0011", "invalid approval : NOT FOUND")
            return
        if session.app_key and session.app_key != app_key:
            await answer(session, tr_id, tr_key, "1", "OPSP0011", "invalid approval : NOT FOUND")
            return
        if not session.app_key and not self._claim(session, app_key):
            self.in_use_refusals[app_key] = self.in_use_refusals.get(app_key, 0) + 1
            await answer(session, tr_id, tr_key, "1", "OPSP8996", "ALREADY IN USE appkey")
            await session.conn.close()
            return
        if tr_id not in (TR_IDS[session.env].fill_notice,
                         OVERSEAS_TR_IDS[session.env].fill_notice):
            await answer(session, tr_id, tr_key, "1", "OPSP8991", "invalid tr_id")
            return
        account = self._sim.lookup(app_key)
        if account is None or tr_key != account.hts_id:
            if self.wrong_hts_id == "silent_drop":
                self._abort(session)
            else:
                await answer(session, tr_id, tr_key, "1", "OPSP8993", "invalid tr_key")
            return
        if (tr_id, tr_key) in session.subscriptions:
            await answer(session, tr_id, tr_key, "0", "OPSP0002", "ALREADY IN SUBSCRIBE")
            return
        key, iv = new_key_iv()
        session.subscriptions[(tr_id, tr_key)] = (key, iv)
        session.hts_id = tr_key
        self._subscribers.setdefault((session.env, tr_key), set()).add(session)
        await answer(
            session, tr_id, tr_key, "0", "OPSP0000", "SUBSCRIBE SUCCESS", {"iv": iv, "key": key}
        )
        self._sim.notify_changed()
        if fault is not None and fault.kind == "drop":
            self._abort(session)

    def _claim(self, session: Session, app_key: str) -> bool:
        """One session per app key; the slot may stay held briefly after a disconnect."""
        if app_key in self._by_app_key:
            return False
        released = self._released.get(app_key)
        now = asyncio.get_running_loop().time()
        if released is not None and now - released < self.slot_hold_s:
            return False
        session.app_key = app_key
        self._by_app_key[app_key] = session
        return True

    async def _unsubscribe(self, session: Session, tr_id: str, tr_key: str) -> None:
        if session.subscriptions.pop((tr_id, tr_key), None) is None:
            await self._answer(session, tr_id, tr_key, "1", "OPSP0003", "UNSUBSCRIBE ERROR")
            return
        subscribers = self._subscribers.get((session.env, tr_key))
        still = any(key == tr_key for _, key in session.subscriptions)
        if subscribers is not None and not still:
            subscribers.discard(session)
        await self._answer(session, tr_id, tr_key, "0", "OPSP0001", "UNSUBSCRIBE SUCCESS")
        self._sim.notify_changed()

    # -- server-wide tasks ----------------------------------------------------------------
    async def _send_loop(self) -> None:
        while True:
            session, frame = await self._outbox.get()
            with contextlib.suppress(ConnectionClosed):
                await session.conn.send(frame)

    async def _ping_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.ping_interval_s)
            now = loop.time()
            text = pingpong(kst(self._sim.now()).strftime("%Y%m%d%H%M%S"))
            for session in list(self._sessions):
                self._ping(session, text, now)

    def _ping(self, session: Session, text: str, now: float) -> None:
        if session.pending_pings and now - min(session.pending_pings.values()) >= (
            self.pong_timeout_s
        ):
            log.info("kis sim: closing a WebSocket that did not answer PINGPONG")
            session.pending_pings.clear()
            self._spawn(session.conn.close())
            return
        session.pending_pings.setdefault(text, now)
        if session.app_key:
            self.pings[session.app_key] = self.pings.get(session.app_key, 0) + 1
        self._outbox.put_nowait((session, text))

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)
