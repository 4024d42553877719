"""The phone numbers of a vCard (``TEL`` lines, folded lines unfolded, RFC 6350 §3.2)."""

from __future__ import annotations

import re

_TEL = re.compile(r"^(?:item\d+\.)?TEL(?:;[^:]*)?:(.*)$", re.IGNORECASE)
_WAID = re.compile(r"waid=(\d+)", re.IGNORECASE)


def phones_of(vcard: str) -> list[str]:
    """Every phone number, in card order; ``waid=`` numbers in +E.164 when the value has none."""
    unfolded = re.sub(r"\r?\n[ \t]", "", vcard)
    phones: list[str] = []
    for line in unfolded.splitlines():
        match = _TEL.match(line.strip())
        if not match:
            continue
        value = match.group(1).strip()
        if not value:
            waid = _WAID.search(line)
            value = f"+{waid.group(1)}" if waid else ""
        if value and value not in phones:
            phones.append(value)
    return phones
