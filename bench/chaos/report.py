"""The matrix as a table (terminal, and Markdown for docs/reliability.md) and as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.chaos.runner import Row

COLUMNS = ("fault", "config", "sent", "arrived", "lost", "dup", "order", "failed", "recovery s", "status")


def cells(row: Row) -> list[str]:
    total = row.total
    if total is None or row.inbound is None or row.outbound is None:
        return [row.fault, row.configuration, *["—"] * 7, f"{row.status}: {row.reason}"]
    recovery = "—" if row.recovery_s is None else f"{row.recovery_s:.1f}"
    status = row.status if not total.unexpected else f"{row.status} ({total.unexpected} unexpected)"
    return [
        row.fault,
        row.configuration,
        f"{total.sent} ({row.inbound.sent}↓ {row.outbound.sent}↑)",
        str(total.arrived),
        str(total.lost),
        str(total.duplicated),
        str(total.out_of_order),
        str(total.failed),
        recovery,
        status,
    ]


def text_table(rows: list[Row]) -> str:
    body = [list(COLUMNS), *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in body) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def write_json(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**meta, "rows": [r.to_json() for r in rows]}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
