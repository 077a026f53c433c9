"""Key checks started from the dashboard, run in the background.

Each step's result is written to the key set as it finishes, so the page (served by
any instance) shows the checklist live by reading it back; the last write carries
the verdict, then the fill-notice connection is moved to match (as after `/keys`).
"""

from __future__ import annotations

import asyncio
import logging

from kis.env import Environment
from kis.keycheck import CheckReport, FillProbe, live_or_probe
from kis.models import Account, AppCredentials
from kis.ws import ConnectionState
from storage.records import UserRecord
from webhook_server.dashboard.ports import DashboardDeps

log = logging.getLogger(__name__)


class CheckRunner:
    """At most one running check per user and environment in this process."""

    def __init__(self, deps: DashboardDeps) -> None:
        self._deps = deps
        self._running: dict[tuple[int, Environment], asyncio.Task[None]] = {}

    def __repr__(self) -> str:
        return f"CheckRunner(running={len(self._running)})"

    def busy(self, user_id: int, env: Environment) -> bool:
        return (user_id, env) in self._running

    def start(
        self,
        user: UserRecord,
        creds: AppCredentials,
        account: Account,
        hts_id: str,
        *,
        keep_live: bool = False,
    ) -> bool:
        """False when a check for this user and environment is already running.

        `keep_live`: re-checking stored keys leaves a READY live connection as it is
        (it runs on these very keys; restarting it would open a gap in fill notices)."""
        key = (user.id, creds.env)
        if key in self._running:
            return False
        task = asyncio.create_task(
            self._run(user, creds, account, hts_id, keep_live),
            name=f"dashboard key check {user.id} {creds.env.value}",
        )
        self._running[key] = task
        task.add_done_callback(lambda _t: self._running.pop(key, None))
        return True

    async def wait_idle(self) -> None:
        """Until no check runs (tests; shutdown uses `close`)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _probe(self, user: UserRecord, account_id: int, keep_live: bool) -> FillProbe:
        watch = self._deps.watch

        async def fresh(creds: AppCredentials, hts_id: str, timeout: float) -> ConnectionState:  # noqa: ASYNC109
            return await watch.probe(account_id, user.chat_id, creds, hts_id, timeout)

        def live(env: Environment) -> ConnectionState | None:
            ready, _ = watch.state_for(account_id, env)
            return watch.connection_state(account_id) if ready else None

        return live_or_probe(live, fresh) if keep_live else fresh

    async def _run(
        self, user: UserRecord, creds: AppCredentials, account: Account, hts_id: str,
        keep_live: bool,
    ) -> None:
        storage = self._deps.storage
        env = creds.env
        # The dashboard registers and checks the keys of the default account; the one it
        # is when the check starts gets the results, whatever changes meanwhile.
        default = await storage.accounts.default(user.id)
        if default is None:  # pragma: no cover - every user has a default account
            return
        holder = default.id

        # Progress leaves the verdict alone: a re-check of keys in use must not block
        # the orders that arrive while it runs.
        async def progress(report: CheckReport) -> None:
            if not report.done:
                await storage.key_sets.record_checks(user.id, env, report.to_json(), None,
                                                     account_id=holder)

        try:
            await storage.key_sets.record_checks(
                user.id, env, CheckReport(env=env).to_json(), None, account_id=holder
            )
            report = await self._deps.keychecker.check(
                creds, account, hts_id, probe=self._probe(user, holder, keep_live),
                progress=progress,
            )
            await storage.key_sets.record_checks(user.id, env, report.to_json(), report.ok,
                                                 account_id=holder)
            await storage.audit.record(
                user.id, "keys.checked",
                {"environment": env.value, "ok": report.ok, "via": "dashboard"},
            )
            await self._deps.watch.sync(user.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dashboard key check failed for user %d (%s)", user.id, env.value)
