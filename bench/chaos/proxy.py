"""A TCP proxy between the bridge and RyzeAPI that can drop or blackhole the link.

* ``drop()``: every open connection is reset (RST), and new ones are reset as soon as they are
  accepted, until ``restore()`` — a crashed load balancer or a flapping route.
* ``blackhole()``: nothing is forwarded any more, in either direction, and nothing is closed:
  bytes stay in the kernel buffers (the proxy stops reading, so TCP's flow control holds the
  senders), and new connections are accepted but get no answer. ``restore()`` lets the bytes
  through again, as a TCP stream does after a partition heals — unless a side gave up and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # SO_LINGER 0 turns close() into a TCP RST.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class LinkProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0
        self.mode = "pass"
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0  # accepted, over the proxy's life (the report shows reconnects)
        self.resets = 0  # connections the proxy reset (dropped link, RyzeAPI down)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def drop(self) -> None:
        self.mode = "drop"
        self._open.set()  # blocked pipes wake up and find their sockets reset
        for writer in list(self._writers):
            _reset(writer)
            self.resets += 1
        self._writers.clear()

    def blackhole(self) -> None:
        self.mode = "blackhole"
        self._open.clear()

    def restore(self) -> None:
        self.mode = "pass"
        self._open.set()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "drop":
            _reset(writer)
            self.resets += 1
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(writer)  # RyzeAPI is down: the client sees the refusal as a reset
            return
        self._writers.update((writer, up_writer))
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        for task in pipes:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()
        for task in pipes:
            task.cancel()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            while True:
                await self._open.wait()  # blackholed: stop reading, the kernel buffers hold the bytes
                data = await reader.read(_CHUNK)
                if not data:
                    return
                await self._open.wait()  # what was read as the hole opened waits for the heal
                if writer.transport.is_closing():
                    return
                writer.write(data)
                await writer.drain()
