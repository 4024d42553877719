"""Parity fixtures: WhatsApp traffic as whatsmeow delivers it (neonize protobufs, built offline)
and the domain event every engine must produce for it.

Each ``Scenario`` has a plain-language ``description`` of the traffic, ``build()`` returning the
neonize event (``neonize.proto.Neonize_pb2.Message`` / ``Receipt`` / connection events), and
``expected``: the domain event (``None`` = the traffic must produce no event). The simulated
engine must produce the same events for the same traffic; compare with ``comparable()``, which
blanks ``Media.handle`` (opaque and engine-specific by design).

This module only depends on ``neonize`` and ``ryze.engines.base`` (plus the neonize translators
in ``translate()``), so it can be imported from any test package, e.g. by file path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa

from ryze.engines.base import (
    ConnectionEvent,
    ConnectionState,
    Contact,
    DomainEvent,
    GroupEvent,
    GroupSettings,
    Location,
    Media,
    MessageEvent,
    Party,
    Poll,
    ReceiptEvent,
    WhatsAppMessage,
)

# --- the cast ---------------------------------------------------------------------------------

ME = "5511900000000@s.whatsapp.net"
ME_LID = "99000000000001@lid"
ALICE = "5511999999999@s.whatsapp.net"
ALICE_LID = "11111111111111@lid"
BOB = "5511988888888@s.whatsapp.net"
BOB_LID = "22222222222222@lid"
GROUP = "120363000000000001@g.us"

TS_MS = 1764072000000  # 2025-11-25 12:00:00 UTC, as neonize 0.5 encodes it (Unix ms)
TS = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)
# neonize's GroupInfo.GroupCreated is a 32-bit float of Unix seconds: exact only to 128 s today.
GROUP_CREATED = datetime(2025, 11, 25, 11, 58, 56, tzinfo=UTC)

Family = Literal["message", "receipt", "connection", "group"]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    family: Family
    build: Callable[[], Any]
    # "group" scenarios expect a tuple: one whatsmeow notification can carry several changes.
    expected: DomainEvent | tuple[GroupEvent, ...] | None
    group_subject: str | None = None  # the group's subject the session already knows (its cache)


# --- builders -----------------------------------------------------------------------------------


def jid(value: str, device: int = 0) -> Any:
    user, server = value.split("@")
    return pb.JID(User=user, Server=server, RawAgent=0, Device=device, Integrator=0, IsEmpty=False)


def source(
    chat: str,
    sender: str,
    *,
    from_me: bool = False,
    group: bool = False,
    sender_alt: str | None = None,
    recipient_alt: str | None = None,
    sender_device: int = 0,
) -> Any:
    lid = sender.endswith("@lid")
    src = pb.MessageSource(
        Chat=jid(chat),
        Sender=jid(sender, sender_device),
        IsFromMe=from_me,
        IsGroup=group,
        AddressingMode=pb.AddressingMode.LID if lid else pb.AddressingMode.PN,
    )
    if sender_alt:
        src.SenderAlt.CopyFrom(jid(sender_alt))
    if recipient_alt:
        src.RecipientAlt.CopyFrom(jid(recipient_alt))
    return src


def message_event(msg_id: str, src: Any, message: Any, *, push_name: str = "", **flags: bool) -> Any:
    info = pb.MessageInfo(ID=msg_id, Timestamp=TS_MS, Pushname=push_name, MessageSource=src, Type="text")
    return pb.Message(Info=info, Message=message, **flags)


def from_alice(msg_id: str, message: Any, **flags: bool) -> Any:
    return message_event(msg_id, source(ALICE, ALICE), message, push_name="Alice", **flags)


def receipt_event(src: Any, ids: tuple[str, ...], kind: int) -> Any:
    return pb.Receipt(MessageSource=src, MessageIDs=list(ids), Timestamp=TS_MS, Type=kind)


def media_fields(mimetype: str, size: int = 2048) -> dict[str, Any]:
    return {
        "URL": "https://mmg.whatsapp.net/v/t62/abc",
        "directPath": "/v/t62/abc",
        "mediaKey": b"k" * 32,
        "fileSHA256": b"s" * 32,
        "fileEncSHA256": b"e" * 32,
        "fileLength": size,
        "mimetype": mimetype,
    }


# --- expected-event helpers ---------------------------------------------------------------------

P_ALICE = Party(jid=ALICE, name="Alice")


def incoming(msg_id: str, **fields: Any) -> MessageEvent:
    return MessageEvent(
        message=WhatsAppMessage(
            id=msg_id, chat=P_ALICE, sender=P_ALICE, from_me=False, timestamp=TS, **fields
        )
    )


def comparable(event: DomainEvent | None) -> DomainEvent | None:
    """The event with ``Media.handle`` blanked: handles are engine-specific."""
    if isinstance(event, MessageEvent) and event.message.media is not None:
        media = dataclasses.replace(event.message.media, handle=b"")
        return dataclasses.replace(event, message=dataclasses.replace(event.message, media=media))
    return event


VCARD_ALICE = (
    "BEGIN:VCARD\nVERSION:3.0\nFN:Alice\n"
    "TEL;type=CELL;type=VOICE;waid=5511999999999:+55 11 99999-9999\nEND:VCARD"
)
VCARD_BOB = "BEGIN:VCARD\nVERSION:3.0\nFN:Bob\nitem1.TEL:+55 11 98888-8888\nEND:VCARD"


# --- the scenarios ------------------------------------------------------------------------------

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "text",
        "Alice (5511999999999) sends the plain text 'Olá!'",
        "message",
        lambda: from_alice("3EB0TEXT01", wa.Message(conversation="Olá!")),
        incoming("3EB0TEXT01", kind="text", text="Olá!"),
    ),
    Scenario(
        "extended_text",
        "Alice sends a text with a link (extendedTextMessage)",
        "message",
        lambda: from_alice(
            "3EB0TEXT02",
            wa.Message(
                extendedTextMessage=wa.ExtendedTextMessage(text="see https://example.com", matchedText="x")
            ),
        ),
        incoming("3EB0TEXT02", kind="text", text="see https://example.com"),
    ),
    Scenario(
        "text_lid_with_pn_alt",
        "Alice, addressed by her LID 11111111111111@lid (PN known as the alternate id), sends 'oi'",
        "message",
        lambda: message_event(
            "3EB0LID01",
            source(ALICE_LID, ALICE_LID, sender_alt=ALICE),
            wa.Message(conversation="oi"),
            push_name="Alice",
        ),
        MessageEvent(
            message=WhatsAppMessage(
                id="3EB0LID01",
                chat=Party(jid=ALICE_LID, alt=ALICE, name="Alice"),
                sender=Party(jid=ALICE_LID, alt=ALICE, name="Alice"),
                from_me=False,
                timestamp=TS,
                kind="text",
                text="oi",
            )
        ),
    ),
    Scenario(
        "group_image_caption_lid_participant",
        "In group 120363000000000001@g.us, Bob (LID 22222222222222@lid, PN alt 5511988888888) sends "
        "an image (image/jpeg, 2048 bytes) with caption 'vejam'",
        "message",
        lambda: message_event(
            "3EB0GRPIMG1",
            source(GROUP, BOB_LID, group=True, sender_alt=BOB, sender_device=3),
            wa.Message(imageMessage=wa.ImageMessage(caption="vejam", **media_fields("image/jpeg"))),
            push_name="Bob",
        ),
        MessageEvent(
            message=WhatsAppMessage(
                id="3EB0GRPIMG1",
                chat=Party(jid=GROUP),
                sender=Party(jid=BOB_LID, alt=BOB, name="Bob"),
                from_me=False,
                timestamp=TS,
                kind="image",
                is_group=True,
                text="vejam",
                media=Media(kind="image", mimetype="image/jpeg", size=2048),
            )
        ),
    ),
    Scenario(
        "group_text_pn_participant",
        "In the group, Bob addressed by phone number (LID alt known) sends 'bom dia'",
        "message",
        lambda: message_event(
            "3EB0GRPTXT1",
            source(GROUP, BOB, group=True, sender_alt=BOB_LID),
            wa.Message(conversation="bom dia"),
            push_name="Bob",
        ),
        MessageEvent(
            message=WhatsAppMessage(
                id="3EB0GRPTXT1",
                chat=Party(jid=GROUP),
                sender=Party(jid=BOB, alt=BOB_LID, name="Bob"),
                from_me=False,
                timestamp=TS,
                kind="text",
                is_group=True,
                text="bom dia",
            )
        ),
    ),
    Scenario(
        "reply",
        "Alice replies 'sim' quoting our message 3EB0OURS01",
        "message",
        lambda: from_alice(
            "3EB0REPLY1",
            wa.Message(
                extendedTextMessage=wa.ExtendedTextMessage(
                    text="sim",
                    contextInfo=wa.ContextInfo(
                        stanzaID="3EB0OURS01",
                        participant=ME,
                        quotedMessage=wa.Message(conversation="tudo bem?"),
                    ),
                )
            ),
        ),
        incoming("3EB0REPLY1", kind="text", text="sim", reply_to="3EB0OURS01", quoted_text="tudo bem?"),
    ),
    Scenario(
        "reaction",
        "Alice reacts 👍 to our message 3EB0OURS01",
        "message",
        lambda: from_alice(
            "3EB0REACT1",
            wa.Message(
                reactionMessage=wa.ReactionMessage(
                    key=MessageKey(remoteJID=ALICE, fromMe=True, ID="3EB0OURS01"),
                    text="👍",
                    senderTimestampMS=TS_MS,
                )
            ),
        ),
        incoming("3EB0REACT1", kind="reaction", target_id="3EB0OURS01", emoji="👍"),
    ),
    Scenario(
        "reaction_removed",
        "Alice removes her reaction to 3EB0OURS01 (empty reaction text)",
        "message",
        lambda: from_alice(
            "3EB0REACT2",
            wa.Message(
                reactionMessage=wa.ReactionMessage(
                    key=MessageKey(remoteJID=ALICE, fromMe=True, ID="3EB0OURS01"), text=""
                )
            ),
        ),
        incoming("3EB0REACT2", kind="reaction", target_id="3EB0OURS01", emoji=""),
    ),
    Scenario(
        "edit",
        "Alice edits her message 3EB0TEXT01 to 'Olá, tudo bem?' (protocolMessage MESSAGE_EDIT, as "
        "whatsmeow delivers it after unwrapping)",
        "message",
        lambda: from_alice(
            "3EB0EDIT01",
            wa.Message(
                protocolMessage=wa.ProtocolMessage(
                    type=wa.ProtocolMessage.MESSAGE_EDIT,
                    key=MessageKey(remoteJID=ALICE, fromMe=False, ID="3EB0TEXT01"),
                    editedMessage=wa.Message(conversation="Olá, tudo bem?"),
                    timestampMS=TS_MS,
                )
            ),
            IsEdit=True,
        ),
        incoming("3EB0EDIT01", kind="edit", target_id="3EB0TEXT01", text="Olá, tudo bem?"),
    ),
    Scenario(
        "edit_wrapped",
        "The same edit still inside its editedMessage wrapper (as sent on the wire)",
        "message",
        lambda: from_alice(
            "3EB0EDIT02",
            wa.Message(
                editedMessage=wa.FutureProofMessage(
                    message=wa.Message(
                        protocolMessage=wa.ProtocolMessage(
                            type=wa.ProtocolMessage.MESSAGE_EDIT,
                            key=MessageKey(remoteJID=ALICE, fromMe=False, ID="3EB0TEXT01"),
                            editedMessage=wa.Message(
                                extendedTextMessage=wa.ExtendedTextMessage(text="Olá, tudo bem?")
                            ),
                        )
                    )
                )
            ),
        ),
        incoming("3EB0EDIT02", kind="edit", target_id="3EB0TEXT01", text="Olá, tudo bem?"),
    ),
    Scenario(
        "revoke",
        "Alice deletes her message 3EB0TEXT01 for everyone (protocolMessage REVOKE)",
        "message",
        lambda: from_alice(
            "3EB0REVOKE1",
            wa.Message(
                protocolMessage=wa.ProtocolMessage(
                    type=wa.ProtocolMessage.REVOKE,
                    key=MessageKey(remoteJID=ALICE, fromMe=False, ID="3EB0TEXT01"),
                )
            ),
        ),
        incoming("3EB0REVOKE1", kind="revoke", target_id="3EB0TEXT01"),
    ),
    Scenario(
        "own_message_from_phone",
        "We (5511900000000) send 'já vou' to Alice from the phone; Alice's LID is the recipient alt",
        "message",
        lambda: message_event(
            "3EB0OWN01",
            source(ALICE, ME, from_me=True, recipient_alt=ALICE_LID, sender_alt=ME_LID),
            wa.Message(conversation="já vou"),
            push_name="Me",
        ),
        MessageEvent(
            message=WhatsAppMessage(
                id="3EB0OWN01",
                chat=Party(jid=ALICE, alt=ALICE_LID),
                sender=Party(jid=ME, alt=ME_LID, name="Me"),
                from_me=True,
                timestamp=TS,
                kind="text",
                text="já vou",
            )
        ),
    ),
    Scenario(
        "voice_note",
        "Alice sends a 7-second voice note (ptt, audio/ogg; codecs=opus)",
        "message",
        lambda: from_alice(
            "3EB0PTT01",
            wa.Message(
                audioMessage=wa.AudioMessage(
                    PTT=True, seconds=7, **media_fields("audio/ogg; codecs=opus", 9000)
                )
            ),
        ),
        incoming(
            "3EB0PTT01",
            kind="audio",
            media=Media(kind="ptt", mimetype="audio/ogg; codecs=opus", size=9000, seconds=7),
        ),
    ),
    Scenario(
        "audio",
        "Alice sends a 3-minute mp3 as audio (not a voice note)",
        "message",
        lambda: from_alice(
            "3EB0AUD01",
            wa.Message(
                audioMessage=wa.AudioMessage(PTT=False, seconds=180, **media_fields("audio/mpeg", 4096))
            ),
        ),
        incoming(
            "3EB0AUD01",
            kind="audio",
            media=Media(kind="audio", mimetype="audio/mpeg", size=4096, seconds=180),
        ),
    ),
    Scenario(
        "video",
        "Alice sends a 12-second mp4 video with caption 'olha'",
        "message",
        lambda: from_alice(
            "3EB0VID01",
            wa.Message(
                videoMessage=wa.VideoMessage(caption="olha", seconds=12, **media_fields("video/mp4", 8192))
            ),
        ),
        incoming(
            "3EB0VID01",
            kind="video",
            text="olha",
            media=Media(kind="video", mimetype="video/mp4", size=8192, seconds=12),
        ),
    ),
    Scenario(
        "document_with_caption",
        "Alice sends report.pdf with caption 'segue' (documentWithCaptionMessage wrapper)",
        "message",
        lambda: from_alice(
            "3EB0DOC01",
            wa.Message(
                documentWithCaptionMessage=wa.FutureProofMessage(
                    message=wa.Message(
                        documentMessage=wa.DocumentMessage(
                            fileName="report.pdf",
                            title="report",
                            caption="segue",
                            **media_fields("application/pdf"),
                        )
                    )
                )
            ),
        ),
        incoming(
            "3EB0DOC01",
            kind="document",
            text="segue",
            media=Media(kind="document", mimetype="application/pdf", file_name="report.pdf", size=2048),
        ),
    ),
    Scenario(
        "sticker",
        "Alice sends a webp sticker",
        "message",
        lambda: from_alice(
            "3EB0STK01", wa.Message(stickerMessage=wa.StickerMessage(**media_fields("image/webp", 512)))
        ),
        incoming("3EB0STK01", kind="sticker", media=Media(kind="sticker", mimetype="image/webp", size=512)),
    ),
    Scenario(
        "location",
        "Alice shares a location (-23.55, -46.63) named 'Escritório'",
        "message",
        lambda: from_alice(
            "3EB0LOC01",
            wa.Message(
                locationMessage=wa.LocationMessage(
                    degreesLatitude=-23.55, degreesLongitude=-46.63, name="Escritório", address="Av. Paulista"
                )
            ),
        ),
        incoming(
            "3EB0LOC01",
            kind="location",
            location=Location(latitude=-23.55, longitude=-46.63, name="Escritório", address="Av. Paulista"),
        ),
    ),
    Scenario(
        "contact",
        "Alice shares her own contact card (vCard with waid)",
        "message",
        lambda: from_alice(
            "3EB0VCF01", wa.Message(contactMessage=wa.ContactMessage(displayName="Alice", vcard=VCARD_ALICE))
        ),
        incoming(
            "3EB0VCF01",
            kind="contact",
            contacts=(Contact(display_name="Alice", vcard=VCARD_ALICE, phones=("5511999999999",)),),
        ),
    ),
    Scenario(
        "contacts_array",
        "Alice shares two contact cards at once",
        "message",
        lambda: from_alice(
            "3EB0VCF02",
            wa.Message(
                contactsArrayMessage=wa.ContactsArrayMessage(
                    displayName="2 contacts",
                    contacts=[
                        wa.ContactMessage(displayName="Alice", vcard=VCARD_ALICE),
                        wa.ContactMessage(displayName="Bob", vcard=VCARD_BOB),
                    ],
                )
            ),
        ),
        incoming(
            "3EB0VCF02",
            kind="contact",
            text="2 contacts",
            contacts=(
                Contact(display_name="Alice", vcard=VCARD_ALICE, phones=("5511999999999",)),
                Contact(display_name="Bob", vcard=VCARD_BOB, phones=("5511988888888",)),
            ),
        ),
    ),
    Scenario(
        "view_once_image",
        "Alice sends a view-once image (viewOnceMessageV2 wrapper)",
        "message",
        lambda: from_alice(
            "3EB0VO01",
            wa.Message(
                viewOnceMessageV2=wa.FutureProofMessage(
                    message=wa.Message(
                        imageMessage=wa.ImageMessage(viewOnce=True, **media_fields("image/jpeg"))
                    )
                )
            ),
        ),
        incoming(
            "3EB0VO01",
            kind="image",
            view_once=True,
            media=Media(kind="image", mimetype="image/jpeg", size=2048),
        ),
    ),
    Scenario(
        "view_once_unwrapped_flag",
        "A view-once image as whatsmeow delivers it (already unwrapped, IsViewOnceV2 flag set)",
        "message",
        lambda: from_alice(
            "3EB0VO02",
            wa.Message(imageMessage=wa.ImageMessage(**media_fields("image/jpeg"))),
            IsViewOnceV2=True,
        ),
        incoming(
            "3EB0VO02",
            kind="image",
            view_once=True,
            media=Media(kind="image", mimetype="image/jpeg", size=2048),
        ),
    ),
    Scenario(
        "ephemeral_text",
        "Alice sends 'some' in a chat with disappearing messages (ephemeralMessage wrapper)",
        "message",
        lambda: from_alice(
            "3EB0EPH01",
            wa.Message(
                ephemeralMessage=wa.FutureProofMessage(
                    message=wa.Message(
                        extendedTextMessage=wa.ExtendedTextMessage(
                            text="some", contextInfo=wa.ContextInfo(expiration=86400)
                        )
                    )
                )
            ),
        ),
        incoming("3EB0EPH01", kind="text", text="some"),
    ),
    Scenario(
        "forwarded",
        "Alice forwards a text message",
        "message",
        lambda: from_alice(
            "3EB0FWD01",
            wa.Message(
                extendedTextMessage=wa.ExtendedTextMessage(
                    text="corrente", contextInfo=wa.ContextInfo(isForwarded=True, forwardingScore=2)
                )
            ),
        ),
        incoming("3EB0FWD01", kind="text", text="corrente", forwarded=True),
    ),
    Scenario(
        "poll",
        "Alice creates a poll 'Almoço?' with options 'pizza' and 'sushi', any number selectable",
        "message",
        lambda: from_alice(
            "3EB0POLL01",
            wa.Message(
                pollCreationMessage=wa.PollCreationMessage(
                    name="Almoço?",
                    options=[wa.PollCreationMessage.Option(optionName=o) for o in ("pizza", "sushi")],
                    selectableOptionsCount=0,
                )
            ),
        ),
        incoming(
            "3EB0POLL01",
            kind="poll",
            poll=Poll(name="Almoço?", options=("pizza", "sushi"), selectable_count=0),
        ),
    ),
    Scenario(
        "poll_single_choice_v3",
        "Alice creates a single-choice poll 'Hoje?' (pollCreationMessageV3: 'sim' / 'não')",
        "message",
        lambda: from_alice(
            "3EB0POLL02",
            wa.Message(
                pollCreationMessageV3=wa.PollCreationMessage(
                    name="Hoje?",
                    options=[wa.PollCreationMessage.Option(optionName=o) for o in ("sim", "não")],
                    selectableOptionsCount=1,
                )
            ),
        ),
        incoming(
            "3EB0POLL02", kind="poll", poll=Poll(name="Hoje?", options=("sim", "não"), selectable_count=1)
        ),
    ),
    Scenario(
        "gif",
        "Alice sends a GIF (an mp4 with gifPlayback) captioned 'kkk'",
        "message",
        lambda: from_alice(
            "3EB0GIF01",
            wa.Message(
                videoMessage=wa.VideoMessage(
                    caption="kkk", seconds=3, gifPlayback=True, **media_fields("video/mp4", 4096)
                )
            ),
        ),
        incoming(
            "3EB0GIF01",
            kind="video",
            text="kkk",
            media=Media(kind="video", mimetype="video/mp4", size=4096, seconds=3, gif=True),
        ),
    ),
    Scenario(
        "video_note",
        "Alice sends a round 5-second video note (ptvMessage)",
        "message",
        lambda: from_alice(
            "3EB0PTV01",
            wa.Message(ptvMessage=wa.VideoMessage(seconds=5, **media_fields("video/mp4", 6000))),
        ),
        incoming(
            "3EB0PTV01", kind="video", media=Media(kind="ptv", mimetype="video/mp4", size=6000, seconds=5)
        ),
    ),
    Scenario(
        "live_location",
        "Alice starts sharing her live location at (-22.9, -43.2) with caption 'indo'",
        "message",
        lambda: from_alice(
            "3EB0LIVE01",
            wa.Message(
                liveLocationMessage=wa.LiveLocationMessage(
                    degreesLatitude=-22.9, degreesLongitude=-43.2, caption="indo", sequenceNumber=1
                )
            ),
        ),
        incoming(
            "3EB0LIVE01",
            kind="location",
            text="indo",
            location=Location(latitude=-22.9, longitude=-43.2, live=True, sequence=1),
        ),
    ),
    Scenario(
        "live_location_update",
        "Alice's live location moves on: a LiveLocationMessage of its own, sequenceNumber 7",
        "message",
        lambda: from_alice(
            "3EB0LIVE02",
            wa.Message(
                liveLocationMessage=wa.LiveLocationMessage(
                    degreesLatitude=-22.95, degreesLongitude=-43.18, sequenceNumber=7, timeOffset=420
                )
            ),
        ),
        incoming(
            "3EB0LIVE02",
            kind="location",
            location=Location(latitude=-22.95, longitude=-43.18, live=True, sequence=7),
        ),
    ),
    Scenario(
        "image_reply",
        "Alice replies to our message 3EB0OURS01 with an image captioned 'essa?'",
        "message",
        lambda: from_alice(
            "3EB0IMGRE1",
            wa.Message(
                imageMessage=wa.ImageMessage(
                    caption="essa?",
                    contextInfo=wa.ContextInfo(
                        stanzaID="3EB0OURS01",
                        participant=ME,
                        quotedMessage=wa.Message(conversation="qual?"),
                    ),
                    **media_fields("image/jpeg"),
                )
            ),
        ),
        incoming(
            "3EB0IMGRE1",
            kind="image",
            text="essa?",
            reply_to="3EB0OURS01",
            quoted_text="qual?",
            media=Media(kind="image", mimetype="image/jpeg", size=2048),
        ),
    ),
    Scenario(
        "view_once_voice",
        "Alice sends a view-once voice note (viewOnceMessageV2Extension wrapper)",
        "message",
        lambda: from_alice(
            "3EB0VO03",
            wa.Message(
                viewOnceMessageV2Extension=wa.FutureProofMessage(
                    message=wa.Message(
                        audioMessage=wa.AudioMessage(
                            PTT=True, seconds=4, viewOnce=True, **media_fields("audio/ogg; codecs=opus", 3000)
                        )
                    )
                )
            ),
        ),
        incoming(
            "3EB0VO03",
            kind="audio",
            view_once=True,
            media=Media(kind="ptt", mimetype="audio/ogg; codecs=opus", size=3000, seconds=4),
        ),
    ),
    Scenario(
        "unsupported_event",
        "Alice creates a calendar event (eventMessage): not rendered, kind 'unsupported'",
        "message",
        lambda: from_alice("3EB0EVT01", wa.Message(eventMessage=wa.EventMessage(name="Festa"))),
        incoming("3EB0EVT01", kind="unsupported"),
    ),
    Scenario(
        "group_text_known_subject",
        "In group 'Família' (subject known to the session), Bob (PN) sends 'oi gente'",
        "message",
        lambda: message_event(
            "3EB0GRPTXT2",
            source(GROUP, BOB, group=True),
            wa.Message(conversation="oi gente"),
            push_name="Bob",
        ),
        MessageEvent(
            message=WhatsAppMessage(
                id="3EB0GRPTXT2",
                chat=Party(jid=GROUP, name="Família"),
                sender=Party(jid=BOB, name="Bob"),
                from_me=False,
                timestamp=TS,
                kind="text",
                is_group=True,
                text="oi gente",
            )
        ),
        group_subject="Família",
    ),
    Scenario(
        "status_broadcast_ignored",
        "Alice posts a status (story): no event",
        "message",
        lambda: message_event(
            "3EB0STATUS1",
            source("status@broadcast", ALICE),
            wa.Message(conversation="story"),
            push_name="Alice",
        ),
        None,
    ),
    Scenario(
        "protocol_housekeeping_ignored",
        "Our phone sends a history-sync notification: no event",
        "message",
        lambda: message_event(
            "3EB0HIST01",
            source(ME, ME, from_me=True),
            wa.Message(protocolMessage=wa.ProtocolMessage(type=wa.ProtocolMessage.HISTORY_SYNC_NOTIFICATION)),
        ),
        None,
    ),
    # --- receipts -------------------------------------------------------------------------------
    Scenario(
        "receipt_delivered",
        "Alice's phone received our messages 3EB0OURS01 and 3EB0OURS02",
        "receipt",
        lambda: receipt_event(source(ALICE, ALICE), ("3EB0OURS01", "3EB0OURS02"), pb.Receipt.DELIVERED),
        ReceiptEvent(
            chat=Party(jid=ALICE),
            sender=Party(jid=ALICE),
            message_ids=("3EB0OURS01", "3EB0OURS02"),
            kind="delivered",
            timestamp=TS,
        ),
    ),
    Scenario(
        "receipt_read",
        "Alice read our message 3EB0OURS01",
        "receipt",
        lambda: receipt_event(source(ALICE, ALICE), ("3EB0OURS01",), pb.Receipt.READ),
        ReceiptEvent(
            chat=Party(jid=ALICE),
            sender=Party(jid=ALICE),
            message_ids=("3EB0OURS01",),
            kind="read",
            timestamp=TS,
        ),
    ),
    Scenario(
        "receipt_played",
        "Alice played our voice note 3EB0OURS03",
        "receipt",
        lambda: receipt_event(source(ALICE, ALICE), ("3EB0OURS03",), pb.Receipt.PLAYED),
        ReceiptEvent(
            chat=Party(jid=ALICE),
            sender=Party(jid=ALICE),
            message_ids=("3EB0OURS03",),
            kind="played",
            timestamp=TS,
        ),
    ),
    Scenario(
        "receipt_group_read_lid",
        "In the group, Bob (LID with PN alt) read our message 3EB0OURS04",
        "receipt",
        lambda: receipt_event(
            source(GROUP, BOB_LID, group=True, sender_alt=BOB), ("3EB0OURS04",), pb.Receipt.READ
        ),
        ReceiptEvent(
            chat=Party(jid=GROUP),
            sender=Party(jid=BOB_LID, alt=BOB),
            message_ids=("3EB0OURS04",),
            kind="read",
            timestamp=TS,
        ),
    ),
    Scenario(
        "receipt_read_self",
        "We read Alice's message 3EB0TEXT01 on another of our devices",
        "receipt",
        lambda: receipt_event(source(ALICE, ME, from_me=True), ("3EB0TEXT01",), pb.Receipt.READ_SELF),
        ReceiptEvent(
            chat=Party(jid=ALICE),
            sender=Party(jid=ME),
            message_ids=("3EB0TEXT01",),
            kind="read_self",
            timestamp=TS,
        ),
    ),
    # --- connection -----------------------------------------------------------------------------
    Scenario(
        "connected",
        "The session connected (our own JID is filled in by the session, not the event)",
        "connection",
        lambda: pb.Connected(status=True),
        ConnectionEvent(state=ConnectionState.CONNECTED),
    ),
    Scenario(
        "logged_out_from_phone",
        "The device was unlinked from the phone",
        "connection",
        lambda: pb.LoggedOut(OnConnect=False, Reason=pb.ConnectFailureReason.LOGGED_OUT),
        ConnectionEvent(state=ConnectionState.LOGGED_OUT, reason="Logged out from the phone (logged_out)"),
    ),
    Scenario(
        "temporary_ban",
        "WhatsApp banned the account for an hour for messaging too many people",
        "connection",
        lambda: pb.TemporaryBan(Code=pb.TemporaryBan.SEND_TO_TOO_MANY_PEOPLE, Expire=3600),
        ConnectionEvent(
            state=ConnectionState.TEMP_BANNED,
            reason="Temporarily banned: sent to too many people; expires in 3600 s",
        ),
    ),
    Scenario(
        "stream_replaced",
        "Another client took over this session",
        "connection",
        lambda: pb.StreamReplaced(),
        ConnectionEvent(
            state=ConnectionState.DISCONNECTED,
            reason="Another client connected with this session (stream replaced)",
        ),
    ),
    Scenario(
        "disconnected",
        "The connection dropped (whatsmeow reconnects)",
        "connection",
        lambda: pb.Disconnected(status=True),
        ConnectionEvent(
            state=ConnectionState.DISCONNECTED, reason="Connection to WhatsApp lost; reconnecting"
        ),
    ),
    # --- groups (group.flow) ---------------------------------------------------------------------
    Scenario(
        "joined_group",
        "Alice (LID, PN alt) creates group 'Família' (topic 'fotos') with Bob (LID, PN alt) and us",
        "group",
        lambda: pb.JoinedGroup(
            Type="new",
            Sender=jid(ALICE_LID),
            SenderPN=jid(ALICE),
            GroupInfo=pb.GroupInfo(
                JID=jid(GROUP),
                OwnerJID=jid(ALICE_LID),
                GroupName=pb.GroupName(Name="Família", NameSetAt=TS_MS),
                GroupTopic=pb.GroupTopic(Topic="fotos"),
                GroupCreated=GROUP_CREATED.timestamp(),
                Participants=[
                    pb.GroupParticipant(JID=jid(ALICE_LID), PhoneNumber=jid(ALICE), IsSuperAdmin=True),
                    pb.GroupParticipant(JID=jid(BOB_LID), PhoneNumber=jid(BOB), DisplayName="Bob"),
                    pb.GroupParticipant(JID=jid(ME), LID=jid(ME_LID)),
                ],
            ),
        ),
        (
            GroupEvent(
                chat=Party(jid=GROUP, name="Família"),
                action="create",
                timestamp=GROUP_CREATED,
                subject="Família",
                topic="fotos",
                participants=(
                    Party(jid=ALICE_LID, alt=ALICE),
                    Party(jid=BOB_LID, alt=BOB, name="Bob"),
                    Party(jid=ME, alt=ME_LID),
                ),
                actor=Party(jid=ALICE_LID, alt=ALICE),
            ),
        ),
    ),
    Scenario(
        "group_renamed",
        "Bob renames group 'Família' to 'Família 2026'",
        "group",
        lambda: pb.GroupInfoEvent(
            JID=jid(GROUP), Sender=jid(BOB), Timestamp=TS_MS, Name=pb.GroupName(Name="Família 2026")
        ),
        (
            GroupEvent(
                chat=Party(jid=GROUP, name="Família 2026"),
                action="subject",
                timestamp=TS,
                subject="Família 2026",
                actor=Party(jid=BOB),
            ),
        ),
        group_subject="Família",
    ),
    Scenario(
        "group_topic_changed",
        "Bob changes the description of 'Família' to 'só fotos'",
        "group",
        lambda: pb.GroupInfoEvent(
            JID=jid(GROUP), Sender=jid(BOB), Timestamp=TS_MS, Topic=pb.GroupTopic(Topic="só fotos")
        ),
        (
            GroupEvent(
                chat=Party(jid=GROUP, name="Família"),
                action="topic",
                timestamp=TS,
                subject="Família",
                topic="só fotos",
                actor=Party(jid=BOB),
            ),
        ),
        group_subject="Família",
    ),
    Scenario(
        "group_added_and_promoted",
        "Alice adds Bob to 'Família' and makes him an admin (one notification, two changes)",
        "group",
        lambda: pb.GroupInfoEvent(
            JID=jid(GROUP), Sender=jid(ALICE), Timestamp=TS_MS, Join=[jid(BOB)], Promote=[jid(BOB)]
        ),
        (
            GroupEvent(
                chat=Party(jid=GROUP, name="Família"),
                action="add",
                timestamp=TS,
                subject="Família",
                participants=(Party(jid=BOB),),
                actor=Party(jid=ALICE),
            ),
            GroupEvent(
                chat=Party(jid=GROUP, name="Família"),
                action="promote",
                timestamp=TS,
                subject="Família",
                participants=(Party(jid=BOB),),
                actor=Party(jid=ALICE),
            ),
        ),
        group_subject="Família",
    ),
    Scenario(
        "group_left",
        "Bob leaves 'Família'",
        "group",
        lambda: pb.GroupInfoEvent(JID=jid(GROUP), Sender=jid(BOB), Timestamp=TS_MS, Leave=[jid(BOB)]),
        (
            GroupEvent(
                chat=Party(jid=GROUP, name="Família"),
                action="remove",
                timestamp=TS,
                subject="Família",
                participants=(Party(jid=BOB),),
                actor=Party(jid=BOB),
            ),
        ),
        group_subject="Família",
    ),
    Scenario(
        "group_settings",
        "Alice makes 'Família' admins-only and turns on 24-hour disappearing messages",
        "group",
        lambda: pb.GroupInfoEvent(
            JID=jid(GROUP),
            Sender=jid(ALICE),
            Timestamp=TS_MS,
            Announce=pb.GroupAnnounce(IsAnnounce=True),
            Ephemeral=pb.GroupEphemeral(IsEphemeral=True, DisappearingTimer=86400),
        ),
        (
            GroupEvent(
                chat=Party(jid=GROUP, name="Família"),
                action="settings",
                timestamp=TS,
                subject="Família",
                actor=Party(jid=ALICE),
                settings=GroupSettings(announce=True, ephemeral_seconds=86400),
            ),
        ),
        group_subject="Família",
    ),
)


def translate(scenario: Scenario) -> DomainEvent | tuple[GroupEvent, ...] | None:
    """What the neonize engine's translators make of the scenario's event (with the session's
    group-subject cache holding ``group_subject``)."""
    from ryze.engines.neonize.translate import (
        translate_connection,
        translate_group_info,
        translate_joined_group,
        translate_message,
        translate_receipt,
    )
    from ryze.engines.neonize.translate.messages import with_group_subject

    event = scenario.build()
    if scenario.family == "message":
        message = translate_message(event)
        if message is None:
            return None
        return MessageEvent(message=with_group_subject(message, scenario.group_subject))
    if scenario.family == "group":
        if isinstance(event, pb.JoinedGroup):
            joined = translate_joined_group(event)
            return (joined,) if joined is not None else ()
        return tuple(translate_group_info(event, known_subject=scenario.group_subject))
    if scenario.family == "receipt":
        return translate_receipt(event)
    return translate_connection(event)
