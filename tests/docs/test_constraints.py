"""constraints.txt is what `make setup`, CI and the container image install: it must pin every
dependency pyproject.toml names, exactly, and match the venv the tests run in (so a passing run
vouches for those versions). Refresh with `make constraints` (docs/operations.md)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line.strip())
        assert match, f"constraints.txt: not an exact pin: {line!r}"
        pins[_norm(match.group(1))] = match.group(2)
    return pins


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    names = {_norm(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in specs}
    return names - {"ryze"}


def test_every_declared_dependency_is_pinned() -> None:
    assert declared() - set(constraints()) == set()


def test_the_test_venv_has_exactly_the_pinned_versions() -> None:
    mismatched = {}
    for name, pinned in constraints().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "missing"
        if installed != pinned:
            mismatched[name] = (pinned, installed)
    assert mismatched == {}, "run `make setup` (or `make constraints` after changing dependencies)"


def test_setup_and_the_image_install_with_the_constraints() -> None:
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()
    containerfile = (ROOT / "deploy" / "Containerfile").read_text()
    assert "constraints.txt" in containerfile.split("COPY src", 1)[0]
    assert "-c constraints.txt" in containerfile
