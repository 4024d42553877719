"""The request recorder and the swagger.json conformance checker (§10)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import orjson
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ryze.emulator import ChatwootEmulator
from ryze.emulator.conformance import ConformanceChecker, default_spec_path

from .conftest import A1, ADMIN, Api


async def test_recorder_keeps_method_path_query_headers_body_status(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    _, _, conv = await api.chat()
    await client.get(f"{A1}/contacts/search", params={"q": "ana"}, headers=ADMIN)
    await client.post(
        f"{A1}/conversations/{conv}/messages",
        data={"content": "pic"},
        files=[("attachments[]", ("a.png", b"12345", "image/png"))],
        headers=ADMIN,
    )
    search = emu.recorder.find("GET", "/contacts/search")[0]
    assert (search.query, search.status) == ("q=ana", 200)
    assert search.headers["api_access_token"] == "cw-admin-token"
    create = emu.recorder.find("POST", "/contacts")[0]
    assert create.body["phone_number"] == "+5511999999999"
    assert create.response_body["payload"]["contact"]["name"].startswith("Contact")
    upload = emu.recorder.find("POST", "/messages")[0]
    assert upload.body == {
        "content": "pic",
        "attachments": [{"filename": "a.png", "content_type": "image/png", "size": 5}],
    }
    r = await client.get("/_emulator/requests")
    listed = r.json()
    assert [x["path"] for x in listed] == [x.path for x in emu.recorder.requests]
    assert all(not x["path"].startswith("/_emulator") for x in listed)
    await client.delete("/_emulator/requests")
    assert list(emu.recorder.requests) == []


async def test_bridge_like_session_is_conformant_including_code_over_spec_cases(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    inbox_id, contact_id, conv = await api.chat()
    # Each of these is a §10 case where the spec is wrong and the code is followed.
    await client.post(f"{A1}/contacts", json={"name": "no inbox_id"}, headers=ADMIN)
    await client.patch(f"{A1}/contacts/{contact_id}", json={"custom_attributes": {"a": 1}}, headers=ADMIN)
    await client.post(f"{A1}/conversations/{conv}/toggle_status", headers=ADMIN)  # no status
    await client.post(
        f"{A1}/contacts/filter",
        json={
            "payload": [
                {
                    "attribute_key": "phone_number",
                    "filter_operator": "equal_to",
                    "values": ["+5511999999999"],
                    "query_operator": None,
                }
            ]
        },
        headers=ADMIN,
    )
    await client.post(
        f"{A1}/contact_inboxes/filter", json={"inbox_id": inbox_id, "source_id": "x"}, headers=ADMIN
    )
    m = await api.message(conv, content="hi", message_type="incoming")
    await client.patch(
        f"{A1}/conversations/{conv}/messages/{m['id']}", json={"status": "read"}, headers=ADMIN
    )
    await client.post(
        f"{A1}/conversations/{conv}/messages",
        data={"message_type": "incoming", "content_attributes": json.dumps({"in_reply_to": m["id"]})},
        files=[("attachments[]", ("a.png", b"x", "image/png"))],
        headers=ADMIN,
    )
    await client.get(f"{A1}/conversations/{conv}", headers=ADMIN)
    await client.get(f"{A1}/conversations/{conv}/messages", headers=ADMIN)
    await client.get(f"{A1}/contacts/{contact_id}", headers=ADMIN)
    await client.get(f"{A1}/inboxes/404", headers=ADMIN)
    await client.delete(f"{A1}/inboxes/{inbox_id}", headers=ADMIN)
    assert emu.recorder.conformance_errors() == []
    r = await client.get("/_emulator/conformance")
    assert r.json() == {"errors": []}


async def test_bad_request_bodies_are_reported(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    _, _, conv = await api.chat()
    await client.post(
        f"{A1}/conversations/{conv}/messages", json={"content": 5, "private": "yes"}, headers=ADMIN
    )
    await client.post(
        f"{A1}/conversations/{conv}/toggle_typing_status", json={"typing_status": "maybe"}, headers=ADMIN
    )
    await client.get(f"{A1}/contacts/1/labels", headers=ADMIN)  # real in the spec, not emulated: 404
    errors = emu.recorder.conformance_errors()
    assert any("messages: request content: 5 is not of type 'string'" in e for e in errors)
    assert any("private" in e for e in errors)
    assert any("typing_status" in e for e in errors)


def _spec_validator(name: str) -> Draft202012Validator:
    spec = orjson.loads(Path(default_spec_path()).read_bytes())
    registry: Registry[object] = Registry().with_resource(
        "urn:spec", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": f"urn:spec#/components/schemas/{name}"}, registry=registry)


async def test_emulator_follows_code_where_spec_disagrees(client: httpx.AsyncClient, api: Api) -> None:
    """§10: a faithful response fails the spec. These are the code's shapes, on purpose."""
    inbox = await api.inbox()
    r = await client.post(f"{A1}/contacts", json={"name": "a", "inbox_id": inbox["id"]}, headers=ADMIN)
    created = r.json()
    assert isinstance(created["payload"], dict)  # the spec's extended_contact wants an array
    assert not _spec_validator("extended_contact").is_valid(created)
    assert not _spec_validator("inbox").is_valid(inbox)  # null website_url etc. on API inboxes
    _, _, conv = await api.chat(phone="+5511988888888")
    r = await client.post(
        f"{A1}/conversations/{conv}/toggle_status", json={"status": "snoozed"}, headers=ADMIN
    )
    r = await client.get(f"{A1}/conversations/{conv}", headers=ADMIN)
    assert r.json()["status"] == "snoozed"
    assert not _spec_validator("conversation").is_valid(r.json())


def test_spec_location_comes_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "swagger.json"
    target.write_text(json.dumps({"openapi": "3.1.0", "paths": {}}))
    monkeypatch.setenv("RYZE_CHATWOOT_SWAGGER", str(target))
    assert default_spec_path() == target
    assert ConformanceChecker.load().operations == []


def test_spec_is_vendored_package_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default spec is the vendored Chatwoot v4.15.1 file inside the installed package, so a
    fresh clone (or a wheel) needs nothing beside it; its bytes are the recorded upstream ones."""
    import hashlib

    import ryze.emulator
    from ryze.emulator.conformance import SPEC_SHA256, VENDORED_SPEC

    monkeypatch.delenv("RYZE_CHATWOOT_SWAGGER", raising=False)
    package_dir = Path(ryze.emulator.__file__).resolve().parent
    assert default_spec_path() == VENDORED_SPEC
    assert VENDORED_SPEC.is_relative_to(package_dir)
    assert hashlib.sha256(VENDORED_SPEC.read_bytes()).hexdigest() == SPEC_SHA256
    assert SPEC_SHA256 in (VENDORED_SPEC.parent / "README.md").read_text()
    assert "MIT" in (VENDORED_SPEC.parent / "LICENSE").read_text()
    assert ConformanceChecker.load().operations  # the real spec, parsed


# Spelled in pieces so that this file does not match what it looks for.
SIBLING = "shared"
SIBLING_PATTERNS = ("../" + SIBLING, f'"{SIBLING}" /', f'/ "{SIBLING}"')


def test_nothing_reads_outside_the_repository() -> None:
    """Code, tests and CI never reach for a folder beside the clone (the sibling folder of the workspace):
    `git clone` + `make test` must pass with nothing next to the clone."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    paths = [*root.glob("src/**/*.py"), *root.glob("tests/**/*.py"), root / "Makefile"]
    paths += [p for p in (root / ".ci").glob("*") if p.is_file()]
    for path in paths:
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8")
        if any(pattern in text for pattern in SIBLING_PATTERNS):
            offenders.append(str(path.relative_to(root)))
    assert offenders == []
