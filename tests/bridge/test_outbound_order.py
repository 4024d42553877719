"""The outbound worker's order within one conversation (Chatwoot delivers webhooks concurrently,
``config/sidekiq.yml``): jobs not yet started run in message-id order, a fresh job waits out the
reorder window so a lower id arriving meanwhile goes first, and a started job is never overtaken."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from ryze.bridge.relay.outbound.worker import OutboundWorker
from ryze.bridge.store.repositories import OutboundJobRecord

from .conftest import eventually


class RecordingWorker(OutboundWorker):
    """Runs no command: records which job ran, optionally held until released."""

    def __init__(self, window: float) -> None:
        super().__init__(
            SimpleNamespace(integration_id="int-1"),  # type: ignore[arg-type]
            link=SimpleNamespace(),  # type: ignore[arg-type]
            max_lanes=4,
            command_timeout=1.0,
            reorder_window=window,
        )
        self.ran: list[tuple[int, str]] = []
        self.gate: asyncio.Event | None = None

    async def _guarded(self, job: OutboundJobRecord) -> bool:
        self.ran.append((job.chatwoot_message_id, job.kind))
        if self.gate is not None:
            await self.gate.wait()
        return True


def job(job_id: int, message_id: int, kind: str = "send") -> OutboundJobRecord:
    return OutboundJobRecord(
        id=job_id,
        integration_id="int-1",
        chatwoot_message_id=message_id,
        conversation_id=3,
        kind=kind,
        payload="{}",
        state="pending",
        attempts=0,
        parts_done=0,
        next_attempt_at=0.0,
        last_error="",
    )


async def test_within_the_window_a_lower_message_id_goes_first() -> None:
    worker = RecordingWorker(window=0.3)
    worker.start(load=False)
    worker.submit(job(1, 30))
    worker.submit(job(2, 20, "revoke"))
    worker.submit(job(3, 10))
    worker.submit(job(4, 20))
    await eventually(lambda: len(worker.ran) == 4)
    assert worker.ran == [(10, "send"), (20, "send"), (20, "revoke"), (30, "send")]
    await worker.stop()


async def test_a_started_job_is_never_overtaken() -> None:
    worker = RecordingWorker(window=0.0)
    worker.gate = asyncio.Event()
    worker.start(load=False)
    worker.submit(job(1, 30))
    await eventually(lambda: worker.ran)  # 30 is being sent
    worker.submit(job(2, 10))  # older, but too late: it goes after
    worker.gate.set()
    await eventually(lambda: len(worker.ran) == 2)
    assert worker.ran == [(30, "send"), (10, "send")]
    await worker.stop()


async def test_jobs_left_by_a_previous_run_do_not_wait() -> None:
    worker = RecordingWorker(window=3600.0)  # a fresh job would wait an hour
    worker.start(load=False)
    worker.submit(job(1, 30), fresh=False)
    worker.submit(job(2, 10), fresh=False)
    await eventually(lambda: len(worker.ran) == 2, timeout=5)
    assert worker.ran == [(10, "send"), (30, "send")]
    await worker.stop()
