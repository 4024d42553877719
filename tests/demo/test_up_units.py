"""How `ryze up` ties the two services together (no processes started)."""

from __future__ import annotations

import stat
from pathlib import Path

from ryze.api.settings import ApiSettings
from ryze.bridge.settings import BridgeSettings
from ryze.demo.up import TOKEN_FILE, dial_host, service_specs, shared_token


def test_a_configured_token_wins_and_no_file_is_written(tmp_path: Path) -> None:
    assert shared_token("  set-by-operator ", tmp_path) == "set-by-operator"
    assert not (tmp_path / TOKEN_FILE).exists()


def test_the_generated_token_is_private_and_stable(tmp_path: Path) -> None:
    first = shared_token("", tmp_path / "data")
    path = tmp_path / "data" / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert shared_token("", tmp_path / "data") == first  # a restart keeps the bridge's links valid


def test_an_empty_token_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / TOKEN_FILE).write_text("\n")
    assert shared_token("", tmp_path)
    assert stat.S_IMODE((tmp_path / TOKEN_FILE).stat().st_mode) == 0o600


def test_wildcard_binds_are_dialled_on_loopback() -> None:
    assert dial_host("0.0.0.0") == "127.0.0.1"
    assert dial_host("::") == "127.0.0.1"
    assert dial_host("10.0.0.5") == "10.0.0.5"


def test_services_point_at_each_other_unless_configured(tmp_path: Path) -> None:
    api = ApiSettings(host="0.0.0.0", port=9001, data_dir=tmp_path, bridge_token="", bridge_url="")
    bridge = BridgeSettings(port=9002, token="")
    api_spec, bridge_spec = service_specs(api, bridge)
    assert api_spec.command == ["api"] and bridge_spec.command == ["bridge"]
    assert api_spec.env["BRIDGE_URL"] == "http://127.0.0.1:9002"
    assert api_spec.env["BRIDGE_INTERNAL_RYZEAPI_URL"] == "http://127.0.0.1:9001"
    assert api_spec.env["BRIDGE_TOKEN"] == bridge_spec.env["BRIDGE_TOKEN"] != ""
    assert api_spec.health_url == "http://127.0.0.1:9001/healthz"
    assert bridge_spec.health_url == "http://127.0.0.1:9002/healthz"

    api = ApiSettings(
        data_dir=tmp_path,
        bridge_token="t0k",
        bridge_url="http://bridge:1",
        bridge_internal_ryzeapi_url="http://x",
    )
    api_spec, bridge_spec = service_specs(api, BridgeSettings(token=""))
    assert "BRIDGE_URL" not in api_spec.env and "BRIDGE_INTERNAL_RYZEAPI_URL" not in api_spec.env
    assert api_spec.env["BRIDGE_TOKEN"] == bridge_spec.env["BRIDGE_TOKEN"] == "t0k"


def test_one_host_allows_loopback_fetches_unless_the_operator_chose(tmp_path: Path) -> None:
    """A Chatwoot next to Ryze is on loopback, which the outbound-fetch policy refuses by default;
    `up` opens it only when FETCH_ALLOW / BRIDGE_FETCH_ALLOW are not set at all (docs/security.md)."""
    api = ApiSettings(data_dir=tmp_path, bridge_token="t0k")
    api_spec, bridge_spec = service_specs(api, BridgeSettings(token=""), environ={})
    assert api_spec.env["FETCH_ALLOW"] == "127.0.0.0/8,::1,localhost"
    assert bridge_spec.env["BRIDGE_FETCH_ALLOW"] == "127.0.0.0/8,::1,localhost"
    chosen = {"FETCH_ALLOW": "", "BRIDGE_FETCH_ALLOW": "10.0.5.20"}
    api_spec, bridge_spec = service_specs(api, BridgeSettings(token=""), environ=chosen)
    assert "FETCH_ALLOW" not in api_spec.env and "BRIDGE_FETCH_ALLOW" not in bridge_spec.env
