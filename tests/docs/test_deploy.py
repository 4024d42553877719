"""deploy/ (and the commands of docs/operations.md) stay consistent with the code: every `ryze`
command they run exists in the CLI, every variable they set is a real setting documented in
docs/configuration.md, and the container recipe installs what the engine needs."""

from __future__ import annotations

import itertools
import json
import re
import shlex
from pathlib import Path

import pytest
import typer

from ryze.api.routes.health import router as health_router
from ryze.api.settings import ApiSettings
from ryze.bridge.settings import BridgeSettings
from ryze.cli import app

from .test_configuration import doc_rows, settings_variables

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
CONTAINERFILE = DEPLOY / "Containerfile"
ENV_EXAMPLE = DEPLOY / "ryze.env.example"
WORD = re.compile(r"^[a-z][a-z-]*$")


def cli_commands() -> dict[str, set[str]]:
    """Top-level command -> its sub-commands (empty for plain commands)."""
    # Duck-typed: recent typer vendors its own click, so isinstance(click.Group) does not hold.
    root = typer.main.get_command(app)
    groups: dict[str, object] = getattr(root, "commands", {})
    assert groups, "the ryze CLI has no commands?"
    return {name: set(getattr(cmd, "commands", {}) or {}) for name, cmd in groups.items()}


def ryze_invocations(argv: list[str]) -> list[list[str]]:
    """`ryze <command> [<sub-command>]` found in one command line (`ryze` or any `.../bin/ryze`)."""
    found = []
    for i, token in enumerate(argv[:-1]):
        if (
            (token == "ryze" or token.endswith("/bin/ryze"))
            and WORD.match(argv[i + 1])
            and argv[i + 1] != "ryze"
        ):
            words = [w for w in argv[i + 1 : i + 3] if WORD.match(w)]
            found.append(words)
    return found


def shell_lines(markdown: str) -> list[list[str]]:
    """The command lines of the ```bash and ```sh blocks of a markdown file (continuations joined)."""
    lines: list[list[str]] = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", markdown, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                try:
                    lines.append(shlex.split(line, comments=True))
                except ValueError:  # a quoted JSON body spread over lines: words are enough here
                    lines.append(line.split("#", 1)[0].split())
    return lines


def containerfile_instructions() -> list[tuple[str, str]]:
    text = CONTAINERFILE.read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def deploy_commands() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for unit in UNITS:
        for line in unit.read_text(encoding="utf-8").splitlines():
            if line.startswith(("ExecStart=", "ExecStartPre=", "ExecStop=")):
                argv = shlex.split(line.split("=", 1)[1])
                found += [(unit.name, words) for words in ryze_invocations(argv)]
    for keyword, rest in containerfile_instructions():
        if keyword in ("CMD", "ENTRYPOINT", "RUN"):
            argv = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
            found += [("Containerfile", words) for words in ryze_invocations(argv)]
    for doc in (DEPLOY / "README.md", ROOT / "docs" / "operations.md", ROOT / "README.md"):
        for argv in shell_lines(doc.read_text(encoding="utf-8")):
            found += [(doc.name, words) for words in ryze_invocations(argv)]
    return found


def deploy_variables() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^([A-Z][A-Z0-9_]*)=", line):
            found.append((ENV_EXAMPLE.name, m[1]))
    for keyword, rest in containerfile_instructions():
        if keyword == "ENV":
            found += [("Containerfile", pair.split("=", 1)[0]) for pair in shlex.split(rest)]
    for unit in UNITS:
        for line in unit.read_text(encoding="utf-8").splitlines():
            if line.startswith("Environment="):
                found += [(unit.name, pair.split("=", 1)[0]) for pair in shlex.split(line.split("=", 1)[1])]
    for argv in shell_lines((DEPLOY / "README.md").read_text(encoding="utf-8")):
        found += [("deploy/README.md", v.split("=", 1)[0]) for f, v in itertools.pairwise(argv) if f == "-e"]
    return found


def test_the_deploy_files_exist() -> None:
    assert {u.name for u in UNITS} == {"ryzeapi.service", "ryze-bridge.service"}
    assert CONTAINERFILE.exists() and ENV_EXAMPLE.exists()
    # the scanners see what is there (guards against a parser silently finding nothing)
    assert ("ryzeapi.service", ["api"]) in deploy_commands()
    assert ("Containerfile", ["up"]) in deploy_commands()
    assert ("operations.md", ["account", "create"]) in deploy_commands()
    assert ("README.md", ["up"]) in deploy_commands()
    assert len(deploy_variables()) > 10


@pytest.mark.parametrize(
    ("where", "words"), deploy_commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else v
)
def test_every_command_exists_in_the_cli(where: str, words: list[str]) -> None:
    commands = cli_commands()
    assert words[0] in commands, f"{where} runs `ryze {words[0]}`, which the CLI does not have"
    if commands[words[0]]:
        assert len(words) > 1 and words[1] in commands[words[0]], f"{where}: `ryze {' '.join(words)}`"


@pytest.mark.parametrize(("where", "name"), deploy_variables())
def test_every_variable_is_a_documented_setting(where: str, name: str) -> None:
    assert name in settings_variables(), f"{where} sets {name}, which no settings class reads"
    assert name in doc_rows(), f"{where} sets {name}, which docs/configuration.md does not describe"


def test_units_read_the_example_environment_file() -> None:
    for unit in UNITS:
        text = unit.read_text(encoding="utf-8")
        env_files = re.findall(r"^EnvironmentFile=-?(\S+)$", text, flags=re.M)
        assert [Path(p).name + ".example" for p in env_files] == [ENV_EXAMPLE.name], unit.name
        assert re.search(r"^User=ryze$", text, flags=re.M), unit.name


def test_container_recipe() -> None:
    steps = containerfile_instructions()
    base = next(rest for keyword, rest in steps if keyword == "FROM")
    assert "slim" in base and ("bookworm" in base or "trixie" in base), "a Debian slim base"
    runs = " ".join(rest for keyword, rest in steps if keyword == "RUN")
    for package in ("libmagic1", "ffmpeg"):
        assert package in runs
    assert "pip install" in runs and ".[neonize]" in runs
    exposed = {int(p) for keyword, rest in steps if keyword == "EXPOSE" for p in rest.split()}
    assert exposed == {ApiSettings.model_fields["port"].default, BridgeSettings.model_fields["port"].default}
    health = next(rest for keyword, rest in steps if keyword == "HEALTHCHECK")
    paths = {getattr(r, "path", "") for r in health_router.routes}
    assert any(f":{ApiSettings.model_fields['port'].default}{p}'" in health for p in paths if p)


def test_the_readme_configuration_table_names_real_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = {
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    }
    assert len(names) > 5
    assert not names - set(settings_variables()), "README names variables no settings class reads"
    assert not names - set(doc_rows()), "README names variables docs/configuration.md does not describe"
