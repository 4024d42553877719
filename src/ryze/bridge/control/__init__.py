"""The connection conversation: one Chatwoot conversation per integration, with a bot contact,
where the bridge posts WhatsApp connection changes and QR codes and answers agents' commands
(``docs/control-room.md``)."""
