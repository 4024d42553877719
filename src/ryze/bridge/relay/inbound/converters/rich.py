"""Types shown as readable text: location (a map link), live location, contact cards, polls,
and whatever we cannot render — never a silent drop."""

from __future__ import annotations

from ryze.bridge.relay.inbound.effects import CreateMessage, Effect, LivePosition
from ryze.bridge.relay.inbound.vcard import phones_of
from ryze.bridge.relay.markdown import whatsapp_to_chatwoot
from ryze.protocol import WAMessage


class LocationConverter:
    def convert(self, message: WAMessage) -> Effect:
        loc = message.location
        if loc is None:
            return CreateMessage(
                content="📍 Location (no coordinates)", reply_to=message.replyTo, quote=message.quotedText
            )
        where = [loc.name or "", loc.address or "", f"{loc.latitude:.6f}, {loc.longitude:.6f}"]
        where.append(f"https://www.google.com/maps/search/?api=1&query={loc.latitude},{loc.longitude}")
        lines = [line for line in where if line]
        if loc.live:
            head = "📍 Live location (stopped sharing)" if loc.ended else "📍 Live location (started sharing)"
            update = "📍 Live location ended · last position" if loc.ended else "📍 Live location · now at"
            return LivePosition(
                started="\n".join([head, *lines]),
                update="\n".join([update, *lines]),
                ended=bool(loc.ended),
                reply_to=message.replyTo,
                quote=message.quotedText,
            )
        return CreateMessage(
            content="\n".join(["📍 Location", *lines]), reply_to=message.replyTo, quote=message.quotedText
        )


class ContactConverter:
    def convert(self, message: WAMessage) -> Effect:
        cards = message.contacts or []
        lines = ["👤 Contact card" if len(cards) <= 1 else f"👤 {len(cards)} contact cards"]
        for card in cards:
            phones = list(dict.fromkeys([*card.phones, *phones_of(card.vcard)]))
            lines.append(card.displayName or "(no name)")
            lines.extend(f"  📞 {phone}" for phone in phones)
        return CreateMessage(content="\n".join(lines), reply_to=message.replyTo, quote=message.quotedText)


class PollConverter:
    def convert(self, message: WAMessage) -> Effect:
        poll = message.poll
        if poll is None:
            return CreateMessage(content="📊 Poll", reply_to=message.replyTo, quote=message.quotedText)
        choice = "choose one" if poll.selectableCount == 1 else "choose any"
        if poll.selectableCount > 1:
            choice = f"choose up to {poll.selectableCount}"
        lines = [f"📊 Poll: {whatsapp_to_chatwoot(poll.name)} ({choice})"]
        lines.extend(f"  ○ {option}" for option in poll.options)
        lines.append("(answer it on the phone: votes are not relayed)")
        return CreateMessage(content="\n".join(lines), reply_to=message.replyTo, quote=message.quotedText)


class UnsupportedConverter:
    def convert(self, message: WAMessage) -> Effect:
        text = f"\n{whatsapp_to_chatwoot(message.text)}" if message.text else ""
        return CreateMessage(
            content=f"⚠️ A WhatsApp message of a kind Chatwoot cannot show ({message.type.value}); "
            f"open it on the phone.{text}",
            reply_to=message.replyTo,
            quote=message.quotedText,
        )
