"""Property-based run over the bridge's own OpenAPI: no 5xx outside the documented Chatwoot rows,
and every error is the bridge's error body.

``RYZE_FUZZ_EXAMPLES`` requests per documented operation (default 100, derandomized; see
``tests/api/test_openapi_properties.py``). The bridge runs on 127.0.0.1 against the Chatwoot
emulator and a fake RyzeAPI, both on 127.0.0.1; the URLs it may call are drawn from loopback ones
only. The webhook route is served ahead of the router and is not in the OpenAPI document: its odd
shapes are tested by the webhook tests.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from openapi_fuzz import Fuzz, Operation, Request, run_settings
from ryze.bridge.app import create_app
from ryze.bridge.settings import BridgeSettings
from ryze.emulator import RunningEmulator
from ryze.launcher import free_port
from ryze.protocol import BridgeErrorBody, FailureKind

from .conftest import ACCOUNT, ADMIN_TOKEN, RunningBridge, run_bridge
from .fake_ryzeapi import TOKEN, FakeRyzeAPI

RUN = run_settings(100)
# Chatwoot itself failing or absent is a documented gateway answer (docs/bridge.md, failure table).
CHATWOOT_5XX = {FailureKind.CHATWOOT_UNREACHABLE, FailureKind.CHATWOOT_TIMEOUT, FailureKind.CHATWOOT_HTTP}


def _operations() -> list[Operation]:
    with tempfile.TemporaryDirectory() as tmp:
        spec = create_app(BridgeSettings(token=TOKEN, data_dir=Path(tmp))).openapi()
    return Fuzz(spec, {}).operations()


OPERATIONS = _operations()


@dataclass
class World:
    bridge: RunningBridge
    fuzz: Fuzz
    fake: FakeRyzeAPI
    chatwoot_url: str

    async def ensure(self) -> None:
        """An integration to reach into, again after an example deleted it."""
        known = self.fuzz.path_values["integration_id"][0]
        if self.bridge.services.manager.get(known) is not None:
            return
        status, view = await self.bridge.activate(self.fake, self.chatwoot_url, instance=f"shop-{known[:6]}")
        assert status == 201, view
        self.fuzz.path_values["integration_id"][0] = view["id"]
        self.fuzz.body_hints["replace_integration_id"] = [view["id"], None]


@pytest.fixture(scope="module")
async def world(
    tmp_path_factory: pytest.TempPathFactory, emulator_module: RunningEmulator, fake_module: FakeRyzeAPI
) -> AsyncIterator[World]:
    tmp = tmp_path_factory.mktemp("bridge-fuzz")
    # Links that cannot connect retry slowly, and an activation does not wait for its link: the
    # run is about answers, not about relaying.
    async with run_bridge(
        tmp, link_backoff_base=5.0, link_backoff_max=30.0, activate_link_wait=0.05, chatwoot_timeout=2.0,
        activate_timeout=2.0,
    ) as bridge:  # fmt: skip
        status, view = await bridge.activate(fake_module, emulator_module.url)
        assert status == 201, view
        emu, fake, closed = emulator_module.url, fake_module.url, f"http://127.0.0.1:{free_port()}"
        urls = [
            emu,
            fake,
            closed,
            "HTTP://" + emu.split("://", 1)[1],
            emu + "/",
            "ftp://127.0.0.1",
            "nonsense",
            "",
        ]
        spec = bridge.app.openapi()
        fuzz = Fuzz(
            spec,
            tokens={"authorization": ["", "Bearer wrong", f"Bearer {TOKEN}", TOKEN, "Basic x"]},
            good_tokens=[("authorization", f"Bearer {TOKEN}")],
            path_values={"integration_id": [view["id"], "nope", ""]},
            urls=urls,
            body_hints={
                "instance": ["shop", "other"],
                "chatwoot_account_id": [ACCOUNT],
                "chatwoot_api_token": [ADMIN_TOKEN],
                "inbox_name": ["WhatsApp Shop"],
                "replace_integration_id": [view["id"], None],
            },
        )
        yield World(bridge, fuzz, fake_module, emulator_module.url)


@pytest.fixture(scope="module")
async def emulator_module() -> AsyncIterator[RunningEmulator]:
    from ryze.emulator import run_emulator

    async with run_emulator(host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture(scope="module")
async def fake_module() -> AsyncIterator[FakeRyzeAPI]:
    from .fake_ryzeapi import run_fake_ryzeapi

    async with run_fake_ryzeapi() as server:
        yield server


def check(req: Request, status: int, content_type: str, body: bytes) -> None:
    where = req.describe()
    if status < 400:
        return
    assert content_type.startswith("application/json"), f"{status} {content_type!r}: {where}"
    try:
        failure = BridgeErrorBody.model_validate_json(body).error
    except ValidationError as exc:
        raise AssertionError(f"{status} {body[:300]!r} is not the bridge's error body: {where}") from exc
    assert set(json.loads(body)) == {"error"}, where
    if status >= 500:
        assert status in (502, 504) and failure.kind in CHATWOOT_5XX, f"{status} {failure}: {where}"


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.id for op in OPERATIONS])
@RUN
@given(data=st.data())
async def test_no_documented_operation_answers_5xx_or_an_undocumented_body(
    world: World, operation: Operation, data: st.DataObject
) -> None:
    await world.ensure()
    req = data.draw(world.fuzz.requests(operation))
    async with world.bridge.http.request(
        req.method, world.bridge.url + req.url, headers=req.headers, data=req.body, allow_redirects=False
    ) as resp:
        body = await resp.read()
        check(req, resp.status, resp.headers.get("content-type", ""), body)
    if os.environ.get("RYZE_FUZZ_STATS"):
        counts = STATS.setdefault(operation.id, {})
        counts[resp.status] = counts.get(resp.status, 0) + 1


STATS: dict[str, dict[int, int]] = {}


def teardown_module() -> None:
    if STATS:
        print(json.dumps(STATS))  # noqa: T201


async def test_the_run_reaches_past_authentication(world: World) -> None:
    """The generator is worth running: its good token authenticates (else all it sees is 401)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            world.bridge.url + "/v1/integrations/nope", headers={"authorization": f"Bearer {TOKEN}"}
        ) as resp,
    ):
        assert resp.status == 404
