"""Running the self-check: in the background after an activation, on demand, and keeping the last
report of each integration (memory + ``bridge_selfchecks``, so it survives a restart)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from ryze.bridge.control.ports import ControlRoom, SelfCheckRunner
from ryze.bridge.control.selfcheck import SelfCheck, SelfCheckTarget, render
from ryze.bridge.runtime import IntegrationRuntime
from ryze.bridge.runtimes import IntegrationManager
from ryze.bridge.settings import BridgeSettings
from ryze.bridge.store.repositories import SelfCheckRepository
from ryze.protocol import IntegrationView, SelfCheckReport

log = logging.getLogger(__name__)

ACTIVATION = "activation"
ON_DEMAND = "on_demand"

# The connection conversation of an integration (h3's ControlRoom), or None while none is wired.
ControlRooms = Callable[[IntegrationRuntime], ControlRoom | None]


def no_rooms(_runtime: IntegrationRuntime) -> ControlRoom | None:
    return None


class SelfChecks:
    def __init__(
        self,
        *,
        settings: BridgeSettings,
        manager: IntegrationManager,
        store: SelfCheckRepository,
        rooms: ControlRooms = no_rooms,
    ) -> None:
        self.settings = settings
        self.manager = manager
        self.store = store
        self.rooms = rooms  # the integrator wires the connection conversation here
        self.reports: dict[str, SelfCheckReport] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        for integration_id, raw in (await self.store.all()).items():
            self.reports[integration_id] = SelfCheckReport.model_validate_json(raw)

    def decorate(self, view: IntegrationView) -> IntegrationView:
        """``view`` with its ``checks`` block (the last report, when there is one)."""
        report = self.reports.get(view.id)
        return view if report is None else view.model_copy(update={"checks": report})

    def forget(self, integration_id: str) -> None:
        self.reports.pop(integration_id, None)
        self._locks.pop(integration_id, None)

    # ------------------------------------------------------------------ running

    def check_for(self, runtime: IntegrationRuntime, room: ControlRoom | None) -> SelfCheck:
        record = runtime.record
        target = SelfCheckTarget(
            integration_id=runtime.id,
            account_id=record.chatwoot_account_id,
            inbox_id=record.inbox_id,
            public_url=self.settings.public_url,
            path_secret_hash=record.path_secret_hash,
            inbox_secret=lambda: runtime.inbox_secret,
            webhook_error=lambda: runtime.webhook_secret.error,
        )
        return SelfCheck(
            target=target,
            chatwoot=runtime.client(),
            room=room,
            probe=runtime.probe,
            round_trip_timeout=self.settings.selfcheck_round_trip_timeout,
        )

    async def run(
        self, runtime: IntegrationRuntime, trigger: str, room: ControlRoom | None = None
    ) -> SelfCheckReport:
        """Run the self-check now (one at a time per integration) and keep its report."""
        async with self._locks[runtime.id]:
            report = await self.check_for(runtime, room if room is not None else self.rooms(runtime)).run(
                trigger
            )
            if self.manager.get(runtime.id) is not runtime:
                return report  # removed or replaced meanwhile: nothing to keep it for
            self.reports[runtime.id] = report
            await self.store.save(runtime.id, report.model_dump_json(), time.time())
            return report

    def schedule(self, runtime: IntegrationRuntime) -> None:
        """After an activation: run in the background (activation does not wait) and post the report."""
        task = asyncio.create_task(self._on_activation(runtime), name=f"selfcheck-{runtime.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_activation(self, runtime: IntegrationRuntime) -> None:
        room = self.rooms(runtime)
        try:
            report = await self.run(runtime, ACTIVATION, room)
            if room is not None:
                await room.post(render(report))
        except Exception:  # a background task: nobody else would see it
            log.exception("self-check after activation failed", extra={"integration_id": runtime.id})

    @staticmethod
    def connection_room(runtime: IntegrationRuntime) -> ControlRoom | None:
        """The integration's connection conversation, unless ``BRIDGE_CONTROL_ROOM`` is off."""
        return runtime.control.room if runtime.control.enabled else None

    def attach(self, runtime: IntegrationRuntime) -> None:
        """Give a new runtime's ``selfcheck`` command its runner (``IntegrationManager.on_build``)."""
        room = self.rooms(runtime)
        if room is not None:
            runtime.control.commands.selfcheck = self.runner(runtime, room)

    def runner(self, runtime: IntegrationRuntime, room: ControlRoom) -> SelfCheckRunner:
        """The ``selfcheck`` command's runner (``control/ports.py``): the report as text to post."""

        async def run() -> str:
            return render(await self.run(runtime, ON_DEMAND, room))

        return run

    async def idle(self) -> None:
        """Wait for the background self-checks started so far (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
