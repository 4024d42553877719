"""A slow request body gets 408 from both services (real uvicorn on 127.0.0.1, a raw socket client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn

from api.harness import make_settings
from bridge.conftest import TOKEN, run_bridge
from ryze.api.app import create_app as create_api
from ryze.protocol import BridgeErrorBody


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[int]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(1000):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await task


async def slow_post(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """Headers and 10 of the 100 promised body bytes, then silence: what does the server say?"""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: 100\r\n{head}\r\n".encode()
            + b'{"number":'
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(65536), 20)  # a bound, not a timing assertion
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    header_map = {}
    for line in header_block.decode().split("\r\n"):
        name, _, value = line.partition(":")
        header_map[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), header_map, body


async def test_ryzeapi_answers_408_to_a_body_that_does_not_arrive(tmp_path: Path) -> None:
    app = create_api(make_settings(tmp_path, request_body_timeout=0.5))
    async with serve(app) as port:
        account = await app.state.services.accounts.create("slow")
        status, headers, body = await slow_post(port, "/api/instance/new", {"token": account.token})
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body) == {
        "success": False,
        "error": {"message": "Request body not received within 0.5s"},
    }


async def test_the_bridge_answers_408_on_its_api_and_its_webhook(tmp_path: Path) -> None:
    async with run_bridge(tmp_path, request_body_timeout=0.5) as bridge:
        port = int(bridge.url.rsplit(":", 1)[1])
        for path, headers in [
            ("/v1/integrations/activate", {"authorization": f"Bearer {TOKEN}"}),
            ("/v1/chatwoot/webhook/some-id/some-secret", {}),
        ]:
            status, _, body = await slow_post(port, path, headers)
            assert status == 408, path
            failure = BridgeErrorBody.model_validate_json(body).error
            assert failure.message == "Request body not received within 0.5s"
