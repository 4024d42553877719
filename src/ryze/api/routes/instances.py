"""``/api/instance/*``: create, list, delete, connect, connection state."""

from __future__ import annotations

import logging
import re
from datetime import UTC
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from ryze.api.auth import Caller, load_owned_instance, require_account, require_caller, services_of
from ryze.api.bodies import body_openapi, parse_body
from ryze.api.errors import ApiError
from ryze.api.records import InstanceRecord
from ryze.api.schemas import CreateInstanceBody
from ryze.api.services.container import ApiServices
from ryze.api.services.instances import InstanceService
from ryze.engines.base import ConnectionState, EngineError

router = APIRouter(prefix="/api/instance", tags=["instances"])
log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 60.0
_PAIR_NUMBER = re.compile(r"^[0-9]{8,15}\Z", re.ASCII)  # ASCII digits: \d takes any script's
_PAIR_SEPARATORS = re.compile(r"[\s-]")
# GET /api/instance/list documents four connection states; the transient QR phase reads as connecting.
_LIST_STATE = {
    ConnectionState.QR_READY.value: "connecting",
    ConnectionState.TEMP_BANNED.value: "disconnected",
}


def created_at(instance: InstanceRecord) -> str | None:
    """RFC 3339 in UTC, e.g. ``2026-04-20T10:15:30Z`` (SQLite hands timestamps back naive)."""
    value = instance.created_at
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _instance_view(services: ApiServices, instance: InstanceRecord) -> dict[str, Any]:
    state = services.sessions.state_of(instance)
    config = InstanceService.public_config(instance)
    return {
        "id": instance.id,
        "name": instance.name,
        "token": instance.token,
        "createdAt": created_at(instance),
        "connection": {
            "state": _LIST_STATE.get(state, state),
            "numberJid": instance.number_jid if state == ConnectionState.CONNECTED.value else None,
            "presenceStatus": "available" if state == ConnectionState.CONNECTED.value else "unavailable",
            "displayStatus": state,
        },
        "profile": {
            "name": instance.profile_name,
            "pictureUrl": None,
            "isBusiness": False,
            "businessName": None,
        },
        **config,
    }


@router.post("/new", status_code=201, openapi_extra=body_openapi(CreateInstanceBody))
async def create_instance(
    request: Request, caller: Annotated[Caller, Depends(require_account)]
) -> dict[str, Any]:
    """Create an instance (TokenAccount only). Born ``disconnected``; connect it next."""
    services = services_of(request)
    body = await parse_body(request, CreateInstanceBody, optional=True)
    instance = await services.instances.create(caller.account_id, body)
    response: dict[str, Any] = {
        "success": True,
        "message": "Instance created",
        "instance": {
            "id": instance.id,
            "name": instance.name,
            "token": instance.token,
            "status": "disconnected",
            "createdAt": created_at(instance),
        },
        **InstanceService.public_config(instance),
    }
    raw = body.model_dump(exclude_unset=True)
    for hook in services.instance_hooks:
        try:
            response.update(await hook.on_created(instance, raw))
        except Exception:
            # Hooks must not raise; if one does anyway, the instance exists and the caller must
            # get its token: report the bug and answer the creation as documented.
            log.exception(
                "instance hook failed on create", extra={"instance": instance.name, "hook": repr(hook)}
            )
    return response


@router.get("/list")
async def list_instances(
    request: Request,
    caller: Annotated[Caller, Depends(require_caller)],
    instance_name: Annotated[str | None, Query(alias="instanceName")] = None,
) -> dict[str, Any]:
    """TokenAccount: the account's instances (``?instanceName=a,b`` filters); TokenInstance: its own."""
    services = services_of(request)
    if caller.kind == "instance":
        own = await services.instances.instance_for_id(caller.instance_id or "")
        instances = [own] if own is not None else []
    else:
        names = [n.strip() for n in instance_name.split(",") if n.strip()] if instance_name else None
        instances = await services.instances.list_for_account(caller.account_id, names)
        if names is not None and len(names) == 1 and not instances:
            raise ApiError(404, "Instance not found")
    count = len(instances)
    return {
        "success": True,
        "message": "1 Instance found" if count == 1 else f"{count} Instances found",
        "instances": [_instance_view(services, i) for i in instances],
    }


@router.delete("/delete/{instance}")
async def delete_instance(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_account)]
) -> dict[str, Any]:
    """Log out of WhatsApp, tear down integrations, delete every record (TokenAccount only)."""
    services = services_of(request)
    record = await load_owned_instance(services, caller, instance)
    try:
        # As documented: log out of WhatsApp first, then tear down integrations, then the rows.
        await services.sessions.remove(record)
        for hook in services.instance_hooks:
            try:
                await hook.on_deleting(record)
            except Exception:
                # Must not raise; a failing tear-down must not keep a deleted instance alive.
                log.exception(
                    "instance hook failed on delete", extra={"instance": record.name, "hook": repr(hook)}
                )
        await services.instances.remove(record)
    except (EngineError, SQLAlchemyError, OSError) as exc:
        log.error("instance delete failed", exc_info=exc, extra={"instance": record.name})
        raise ApiError(500, f"Failed to delete instance: {exc}") from exc
    return {"success": True, "message": "Instance deleted", "instance": {"status": "deleted"}}


@router.get("/connect/{instance}", response_model=None)
async def connect_instance(
    request: Request,
    instance: str,
    caller: Annotated[Caller, Depends(require_caller)],
    number: str | None = None,
    history: int | None = None,
) -> dict[str, Any] | JSONResponse:
    """A QR code to scan, or with ``?number=`` an 8-character pairing code."""
    del history  # accepted as documented; history sync is the engine's business
    services = services_of(request)
    record = await load_owned_instance(services, caller, instance)
    pair_number = None
    if number is not None:
        pair_number = re.sub(r"[\s+\-()]", "", number)
        if not _PAIR_NUMBER.match(pair_number):
            raise ApiError(400, "Invalid number: use the phone number with country code, digits only")
    session = await services.sessions.get(record)
    result = await session.connect(pair_number=pair_number, timeout=CONNECT_TIMEOUT)
    if result.state == ConnectionState.CONNECTED:
        me = session.me
        return {
            "success": True,
            "message": "Instance already connected",
            "status": "connected",
            "numberJid": me.jid if me else record.number_jid,
        }
    if result.pairing_code:
        return {
            "success": True,
            "message": "Pairing code generated",
            # whatsmeow hands out "ABCD-EFGH"; the documented code is the 8 characters to type.
            "pairingCode": _PAIR_SEPARATORS.sub("", result.pairing_code),
            "status": "pairing",
        }
    if result.qr:
        return {
            "success": True,
            "message": "QR code generated",
            "qrCode": result.qr,
            "qrCodeBase64": segno.make_qr(result.qr).png_data_uri(scale=6, border=2),
            "status": "qr",
        }
    raise ApiError(504, "WhatsApp did not provide a QR code in time; try again")


@router.get("/status/{instance}")
async def instance_status(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    """The connection state of one instance (also announced by the ``instance.state`` event)."""
    services = services_of(request)
    record = await load_owned_instance(services, caller, instance)
    state = services.sessions.state_of(record)
    return {
        "success": True,
        "message": "Instance status",
        "instance": {
            "name": record.name,
            "state": state,
            "numberJid": record.number_jid if state == ConnectionState.CONNECTED.value else None,
        },
    }
