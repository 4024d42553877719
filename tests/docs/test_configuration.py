"""docs/configuration.md names every environment variable the code reads, with the code's default.

Sources of truth: the fields of every pydantic-settings class under `src/ryze` (name = prefix +
field) and every direct environment read (`os.environ[...]`, `os.environ.get(...)`, `os.getenv(...)`,
`env.get(...)` on a mapping called *env*/*environ*, and small `_env*("NAME")` helpers).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from ryze.api.settings import ApiSettings
from ryze.bridge.settings import BridgeSettings

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "ryze"
DOC = ROOT / "docs" / "configuration.md"
NAME = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")
SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (ApiSettings, BridgeSettings)


def doc_rows() -> dict[str, list[str]]:
    """First-column `NAME` of every table row -> the row's cells."""
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and (m := re.fullmatch(r"`([A-Z][A-Z0-9_]+)`", cells[0])):
            rows.setdefault(m[1], cells)  # BRIDGE_TOKEN appears for both services; the first row is enough
    return rows


def settings_variables() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cls in SETTINGS_CLASSES:
        prefix = str(cls.model_config.get("env_prefix") or "")
        for field_name, info in cls.model_fields.items():
            out[(prefix + field_name).upper()] = info.default
    return out


def _receiver(node: ast.expr) -> str:
    return ast.unparse(node).lower()


def env_reads(path: Path) -> set[str]:
    """Constant variable names read from the environment in one module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        arg: ast.expr | None = None
        if isinstance(node, ast.Subscript) and _receiver(node.value).endswith("environ"):
            arg = node.slice
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "pop", "setdefault"):
                if _receiver(func.value).endswith(("environ", "env")):
                    arg = node.args[0]
            elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                arg = node.args[0]
            elif isinstance(func, ast.Name) and (func.id == "getenv" or func.id.startswith("_env")):
                arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and NAME.match(arg.value):
            names.add(arg.value)
    return names


def code_env_reads() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(SRC.rglob("*.py")):
        for name in env_reads(path):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def render_default(value: Any) -> str:
    if value in ("", None):
        return "(empty)"
    if isinstance(value, Path):
        return str(value) if value.is_absolute() else f"./{value}"
    return f"`{value}`"


def test_the_scanner_finds_the_known_reads() -> None:
    # Guards the scanner itself: these reads exist today in the emulator and the bridge migrations.
    reads = code_env_reads()
    for name in ("EMULATOR_PORT", "EMULATOR_SEED_FILE", "EMULATOR_WEBHOOK_TIMEOUT", "BRIDGE_DATABASE_URL"):
        assert name in reads


def test_every_settings_class_is_covered() -> None:
    """A new pydantic-settings class must be added to SETTINGS_CLASSES (and documented)."""
    declared = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "BaseSettings" for b in node.bases):
                declared.add(node.name)
    assert declared == {cls.__name__ for cls in SETTINGS_CLASSES}


@pytest.mark.parametrize(("name", "default"), sorted(settings_variables().items()))
def test_settings_field_is_documented_with_its_default(name: str, default: Any) -> None:
    rows = doc_rows()
    assert name in rows, f"{name} is read by a settings class but missing from docs/configuration.md"
    documented = rows[name][1]
    expected = render_default(default)
    if isinstance(default, Path):
        assert documented.strip("`") == expected, f"{name}: documented {documented}, code {expected}"
    else:
        assert documented == expected, f"{name}: documented default {documented}, code {expected}"


def test_every_environment_read_is_documented() -> None:
    rows = doc_rows()
    missing = {name: where for name, where in code_env_reads().items() if name not in rows}
    assert not missing, f"environment variables read but not in docs/configuration.md: {missing}"


def test_no_documented_variable_is_stale() -> None:
    known = set(settings_variables()) | set(code_env_reads()) | {"RYZE_TEST_PG_URL"}
    stale = sorted(set(doc_rows()) - known)
    assert not stale, f"documented but read nowhere under src/ryze: {stale}"
