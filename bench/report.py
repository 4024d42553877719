"""The figures as a rich table (what `make bench` prints) and as JSON (``bench/results/latest.json``)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.stats import ratio


def _get(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        text = f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text} {unit}".strip()


def _check(ok: bool | None) -> str:
    return "—" if ok is None else ("[green]met[/green]" if ok else "[red]missed[/red]")


def _s_per_1000(per_1000: dict[str, Any] | None, name: str) -> float | None:
    value = (per_1000 or {}).get(name)
    return (
        None if value is None else round(float(value), 3)
    )  # CPU seconds per 1,000 messages (= ms per message)


def _triple(data: dict[str, Any], a: str, b: str, c: str, unit: str = "") -> str:
    return " / ".join(_fmt(_get(data, k)) for k in (a, b, c)) + (f" {unit}" if unit else "")


def _pct(value: Any) -> str:
    return f"{round(100 * float(value))}%" if isinstance(value, int | float) else "?"


def _target(value: float | None, ok: bool) -> str:
    return _check(None if value is None else ok)


COLUMNS = ("area", "figure", "relay", "ceiling / target", "ratio", "status")
CAPTION = (
    "inbound latency: injection → message exists in the emulator · outbound latency: agent message "
    "created → in the phone's outbox · flat out = closed loop at max rate (latency = queueing)"
)


def build_table(results: dict[str, Any]) -> Table:
    table = Table(title="Ryze relay benchmark", caption=CAPTION, show_lines=False)
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("area", "figure", "status") else "right")
    for cells in table_rows(results):
        table.add_row(*cells)
    return table


def markdown(results: dict[str, Any]) -> str:
    """The same table for docs/performance.md (``python -m bench.report [latest.json]``)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for cells in table_rows(results):
        lines.append("| " + " | ".join(_MARKUP.sub("", c) for c in cells) + " |")
    return "\n".join(lines)


_MARKUP = re.compile(r"\[/?[a-z ]+\]")


def table_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    phases = results.get("phases", {})
    inbound = phases.get("inbound") or {}
    ceiling = phases.get("ceiling") or {}
    outbound = phases.get("outbound") or {}
    scale = phases.get("scale") or {}
    derived = results.get("derived", {})
    rows: list[tuple[str, ...]] = []

    def row(*cells: str) -> None:
        rows.append(cells)

    ratio_in = derived.get("inbound_relay_over_ceiling")
    row("inbound", "messages/s (steady)", _fmt(_get(inbound, "steady_rate")),
        _fmt(_get(ceiling, "steady_rate")), _fmt(ratio_in),
        _target(ratio_in, (ratio_in or 0) >= 0.5))  # fmt: skip
    row("ceiling", "request latency p50/p99/max", "",
        _triple(ceiling, "latency.p50_ms", "latency.p99_ms", "latency.max_ms", "ms"), "", "")  # fmt: skip
    load = _pct(_get(inbound, "paced.load"))
    for q in ("p50", "p95", "p99"):
        row("inbound", f"latency {q} at {load} load",
            _fmt(_get(inbound, f"latency.{q}_ms"), "ms"), "", "", "")  # fmt: skip
    row("inbound", "latency p50/p99/max flat out",
        _triple(inbound, "latency_saturated.p50_ms", "latency_saturated.p99_ms", "latency_saturated.max_ms",
                "ms"), "", "", "")  # fmt: skip
    row("inbound", "first message of a chat p50/p95/p99",
        _triple(inbound, "warmup.latency.p50_ms", "warmup.latency.p95_ms", "warmup.latency.p99_ms", "ms"),
        "", "", "")  # fmt: skip
    row("inbound", "found / lost / duplicated", _triple(inbound, "found", "lost", "duplicates"), "", "",
        _check(_get(inbound, "complete")))  # fmt: skip
    per_1000 = _get(inbound, "cpu_seconds_per_1000")
    ceiling_per_1000 = _get(ceiling, "cpu_seconds_per_1000")
    for name in ("api", "bridge", "emulator", "bench"):
        # The ceiling only runs the emulator and the client; RyzeAPI and the bridge sit idle.
        ceiling_cost = _fmt(_s_per_1000(ceiling_per_1000, name), "s") if name in ("emulator", "bench") else ""
        row("cost", f"CPU s per 1,000 msgs: {name}", _fmt(_s_per_1000(per_1000, name), "s"), ceiling_cost,
            "", "")  # fmt: skip
    services = ("api", "bridge", "emulator")
    total = sum(_s_per_1000(per_1000, n) or 0.0 for n in services) if per_1000 else None
    row("cost", "CPU s per 1,000 msgs: all services", _fmt(total, "s"),
        _fmt(_s_per_1000(ceiling_per_1000, "emulator"), "s"), "", "")  # fmt: skip
    ack_in = _get(derived, "webhook_ack_inbound.p99_ms")
    row("webhook", "ack p99 during inbound load", _fmt(ack_in, "ms"), "< 100 ms", "",
        _target(ack_in, (ack_in or 0) < 100))  # fmt: skip

    row("outbound", "messages/s (steady)", _fmt(_get(outbound, "steady_rate")), "", "", "")
    resolution = f"± {_fmt(_get(outbound, 'latency_resolution_ms'), 'ms')} polling"
    load = _pct(_get(outbound, "paced.load"))
    for q in ("p50", "p95", "p99"):
        row("outbound", f"latency {q} at {load} load",
            _fmt(_get(outbound, f"latency.{q}_ms"), "ms"), resolution, "", "")  # fmt: skip
    row("outbound", "latency p50/p99/max flat out",
        _triple(outbound, "latency_saturated.p50_ms", "latency_saturated.p99_ms", "latency_saturated.max_ms",
                "ms"), "", "", "")  # fmt: skip
    row("outbound", "CPU s per 1,000 msgs: api (net of polls)",
        _fmt(_get(outbound, "api_cpu_seconds_per_1000_net_of_polls"), "s"), "", "", "")  # fmt: skip
    row("outbound", "CPU s per 1,000 msgs: bridge", _fmt(_s_per_1000(_get(outbound, "cpu_seconds_per_1000"),
        "bridge"), "s"), "", "", "")  # fmt: skip
    ack_out = _get(outbound, "webhook_ack.p99_ms")
    row(
        "outbound",
        "webhook ack p99",
        _fmt(ack_out, "ms"),
        "< 100 ms",
        "",
        _target(ack_out, (ack_out or 0) < 100),
    )
    row("outbound", "delivered / lost / duplicated", _triple(outbound, "delivered", "lost", "duplicates"),
        "", "", _check(_get(outbound, "complete")))  # fmt: skip

    media = phases.get("media") or {}
    if media:
        media_rows(media, row)

    row("scale", "integrations linked (K)", _fmt(_get(scale, "created")), _fmt(_get(scale, "requested")), "",
        _check(_get(scale, "fits_budget")))  # fmt: skip
    rss_bridge = _get(scale, "rss_kib_per_integration.bridge")
    row("scale", "bridge RSS per integration", _fmt(rss_bridge, "KiB"), "≤ 200 KiB", "",
        _target(rss_bridge, (rss_bridge or 0) <= 200))  # fmt: skip
    row("scale", "RyzeAPI RSS per integration", _fmt(_get(scale, "rss_kib_per_integration.api"), "KiB"),
        "", "", "")  # fmt: skip
    for name in ("bridge", "api"):
        row("scale", f"idle CPU {name}", _fmt(_get(scale, f"idle_cpu_percent.{name}"), "% core"), "", "", "")
    relink = _get(scale, "relink.seconds_from_spawn")
    relinked = bool(_get(scale, "relink.complete")) and (relink or 0) <= 30
    row(
        "scale",
        "re-link all after RyzeAPI restart",
        _fmt(relink, "s"),
        "≤ 30 s",
        "",
        _target(relink, relinked),
    )
    return rows


def media_rows(media: dict[str, Any], row: Any) -> None:
    """Inbound media, beside the text figures; no figure when the images did not arrive as files."""
    size = f"{_fmt(_get(media, 'images'))} × {_fmt(_get(media, 'image_kib'))} KiB"
    relayed = _get(media, "relayed_as") or "?"
    status = _check(_get(media, "complete"))
    row("media", f"images/s (steady), {size}", _fmt(_get(media, "steady_rate")), "", "",
        status if relayed == "attachments" else f"[red]{relayed}[/red]")  # fmt: skip
    row("media", "MiB/s", _fmt(_get(media, "mib_per_s")), "", "", "")
    row("media", "latency p50/p99/max flat out",
        _triple(media, "latency.p50_ms", "latency.p99_ms", "latency.max_ms", "ms"), "", "", "")  # fmt: skip
    for name in ("api", "bridge", "emulator"):
        row(
            "media",
            f"CPU ms per image: {name}",
            _fmt(_get(media, f"cpu_ms_per_image.{name}"), "ms"),
            "",
            "",
            "",
        )
    for name in ("api", "bridge"):
        row("media", f"RSS peak growth per image: {name}",
            _fmt(_get(media, f"rss_peak_growth_kib_per_image.{name}"), "KiB"), "", "", "")  # fmt: skip
    row("media", "bytes match / placeholders / lost", _triple(media, "bytes_match", "placeholders", "lost"),
        "", "", status)  # fmt: skip


def derive(results: dict[str, Any]) -> dict[str, Any]:
    phases = results.get("phases", {})
    return {
        "inbound_relay_over_ceiling": ratio(
            _get(phases, "inbound.steady_rate"), _get(phases, "ceiling.steady_rate")
        ),
        "inbound_relay_over_ceiling_overall": ratio(
            _get(phases, "inbound.rate"), _get(phases, "ceiling.rate")
        ),
    }


def print_report(results: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    console.print(build_table(results))
    machine = results.get("machine", {})
    console.print(
        f"machine: {machine.get('cpu_model')} · {machine.get('cores')} cores · "
        f"{machine.get('memory_mib')} MiB · Python {machine.get('python')} · "
        f"commit {str(machine.get('git_commit'))[:10]}{' (dirty)' if machine.get('git_dirty') else ''} · "
        f"load {machine.get('load_average_at_start')}"
    )
    for error in results.get("errors", []):
        console.print(f"[red]phase {error['phase']} failed:[/red] {error['error']}")


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results" / "latest.json"
    print(markdown(json.loads(source.read_text())))
