"""Initial accounts and users of the emulator, from code, a JSON file or the environment."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Role = Literal["administrator", "agent"]


@dataclass(frozen=True)
class SeedUser:
    email: str
    access_token: str
    role: Role = "agent"
    name: str = ""

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@", 1)[0].replace(".", " ").title()


@dataclass(frozen=True)
class SeedAccount:
    name: str
    users: tuple[SeedUser, ...] = ()
    id: int | None = None
    # Chatwoot's `usage_limits[:inboxes]`; None means unlimited (self-hosted default).
    inbox_limit: int | None = None


@dataclass(frozen=True)
class EmulatorSeed:
    accounts: tuple[SeedAccount, ...] = field(default_factory=tuple)

    @classmethod
    def default(cls) -> EmulatorSeed:
        return cls(
            accounts=(
                SeedAccount(
                    id=1,
                    name="Acme",
                    users=(
                        SeedUser("admin@acme.test", "cw-admin-token", "administrator", "Acme Admin"),
                        SeedUser("agent@acme.test", "cw-agent-token", "agent", "Acme Agent"),
                    ),
                ),
            )
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmulatorSeed:
        """Build from `{"accounts":[{"id":1,"name":"Acme","inbox_limit":null,"users":[{...}]}]}`."""
        accounts = []
        for raw in data.get("accounts", []):
            users = tuple(
                SeedUser(
                    email=str(u["email"]),
                    access_token=str(u["access_token"]),
                    role="administrator" if u.get("role") == "administrator" else "agent",
                    name=str(u.get("name", "")),
                )
                for u in raw.get("users", [])
            )
            limit = raw.get("inbox_limit")
            accounts.append(
                SeedAccount(
                    name=str(raw["name"]),
                    users=users,
                    id=int(raw["id"]) if raw.get("id") is not None else None,
                    inbox_limit=int(limit) if limit is not None else None,
                )
            )
        return cls(accounts=tuple(accounts))

    @classmethod
    def from_file(cls, path: str | Path) -> EmulatorSeed:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> EmulatorSeed:
        """`EMULATOR_SEED_FILE` wins; else the default seed with tokens from
        `EMULATOR_ADMIN_TOKEN` / `EMULATOR_AGENT_TOKEN` and `EMULATOR_INBOX_LIMIT`."""
        env = os.environ if environ is None else environ
        seed_file = env.get("EMULATOR_SEED_FILE")
        if seed_file:
            return cls.from_file(seed_file)
        limit = env.get("EMULATOR_INBOX_LIMIT")
        return cls(
            accounts=(
                SeedAccount(
                    id=1,
                    name=env.get("EMULATOR_ACCOUNT_NAME", "Acme"),
                    inbox_limit=int(limit) if limit else None,
                    users=(
                        SeedUser(
                            "admin@acme.test",
                            env.get("EMULATOR_ADMIN_TOKEN", "cw-admin-token"),
                            "administrator",
                            "Acme Admin",
                        ),
                        SeedUser(
                            "agent@acme.test",
                            env.get("EMULATOR_AGENT_TOKEN", "cw-agent-token"),
                            "agent",
                            "Acme Agent",
                        ),
                    ),
                ),
            )
        )
