"""The neonize release Ryze is pinned to still has the private attributes Ryze overrides.

`RyzeClient` (src/ryze/engines/neonize/_neonize.py) replaces three name-mangled members of
neonize's ``NewAClient`` (neonize/aioze/client.py in 0.5.2): ``self.__client`` (every FFI call),
``self.__onQr`` and ``self.__onLoginStatus`` (bound into ctypes by ``connect_with_proxy``), plus
``self._stop_finalizer`` (a GC-time ``Stop`` that would bypass the Go-core lock). If a release
renamed any of them, the override would silently stop applying: QR codes would go to neonize's
terminal printer and FFI calls to ``asyncio.to_thread``. These tests fail first.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from neonize.aioze.client import NewAClient

from ryze.engines.neonize._neonize import RyzeClient, _FfiRouter
from ryze.engines.neonize.executor import FfiExecutor

ROOT = Path(__file__).resolve().parents[3]


def _pin() -> str:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [spec] = [d for d in extras["neonize"] if d.startswith("neonize")]
    match = re.fullmatch(r"neonize==([0-9][0-9a-z.]*)", spec)
    assert match, f"neonize must be pinned exactly, found {spec!r}"
    return match.group(1)


def test_neonize_is_pinned_exactly_and_installed_at_the_pin() -> None:
    assert version("neonize") == _pin() == "0.5.2"
    assert f"neonize=={_pin()}" in (ROOT / "constraints.txt").read_text().splitlines()


def test_the_mangled_members_ryze_overrides_exist_in_neonize() -> None:
    init = inspect.getsource(NewAClient.__init__)
    connect = inspect.getsource(NewAClient.connect_with_proxy)
    assert "self.__client = async_gocode" in init
    assert "self._stop_finalizer = weakref.finalize(" in init
    # connect binds these two into ctypes: overriding them is how QR/login status reach us
    assert "func_string(self.__onQr)" in connect
    assert "func_string(self.__onLoginStatus)" in connect
    assert "self.__client.Neonize(" in connect
    assert "func_callback_bytes(self.event.execute)" in connect
    for name in ("_NewAClient__onQr", "_NewAClient__onLoginStatus"):
        assert callable(getattr(NewAClient, name))
        assert getattr(RyzeClient, name) is not getattr(NewAClient, name)


def test_a_ryze_client_routes_ffi_calls_and_disarms_the_gc_stop() -> None:
    executor = FfiExecutor(expected_sessions=0, headroom=1)
    try:
        client = RyzeClient(
            "pin-check",
            uuid="ryze-pin-check",
            executor=executor,
            on_event=lambda _raw, _code: None,
            on_qr=lambda _qr: None,
            on_login_status=lambda _status: None,
        )
        assert isinstance(client._NewAClient__client, _FfiRouter)
        assert not client._stop_finalizer.alive  # Ryze stops clients itself, under the lock
    finally:
        executor.shutdown()
