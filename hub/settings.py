"""Settings: every one an environment variable (``LIANDONG_...``), read once and passed down.

Documented in ``deploy/env/liandong.env.example``; a test checks that every name read here is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import InvalidInput

_REPO_PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"


@dataclass(frozen=True)
class Settings:
    data: Path = Path(".liandong")
    host: str = "127.0.0.1"
    port: int = 8000
    playbooks: Path = field(default=_REPO_PLAYBOOKS)
    sqlite_synchronous: str = "FULL"
    bus: str = "embedded"
    database: str = "sqlite"
    log_level: str = "INFO"
    max_body_bytes: int = 1_048_576
    engine_workers: int = 1
    pg_writers: int = 2
    kafka_fetch_max_wait_ms: int = 100
    kafka_linger_ms: int = 2
    kafka_session_timeout_ms: int = 10_000

    @property
    def database_path(self) -> Path:
        return self.data / "liandong.db"

    def check(self) -> None:
        """Refuse settings that cannot work, naming the setting, instead of ignoring them."""
        if self.bus != "embedded" and not self.bus.startswith("kafka://"):
            raise InvalidInput(
                f"LIANDONG_BUS={self.bus}: expected 'embedded' or kafka://HOST:PORT[,HOST:PORT]"
            )
        postgres = self.database.startswith(("postgresql://", "postgres://"))
        if self.database != "sqlite" and not postgres:
            raise InvalidInput(
                f"LIANDONG_DATABASE={self.database}: expected 'sqlite' or postgresql://..."
            )
        if postgres and self.bus == "embedded":
            raise InvalidInput(
                "LIANDONG_DATABASE=postgresql://... needs LIANDONG_BUS=kafka://...: the embedded "
                "bus is a log inside the SQLite file"
            )
        if not 0 <= self.engine_workers <= 16:
            raise InvalidInput(
                f"LIANDONG_ENGINE_WORKERS={self.engine_workers}: expected 0 (plan in the hub's "
                "own process) to 16"
            )
        if not 1 <= self.pg_writers <= 16:
            raise InvalidInput(
                f"LIANDONG_PG_WRITERS={self.pg_writers}: expected 1 to 16 writer connections"
            )
        if not self.playbooks.is_dir():
            raise InvalidInput(f"LIANDONG_PLAYBOOKS={self.playbooks}: no such directory")


def from_env(env: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from the environment; keyword overrides (command-line flags) win."""
    env = dict(os.environ) if env is None else env
    values: dict[str, object] = {}
    if "LIANDONG_DATA" in env:
        values["data"] = Path(env["LIANDONG_DATA"])
    if "LIANDONG_HOST" in env:
        values["host"] = env["LIANDONG_HOST"]
    if "LIANDONG_PORT" in env:
        values["port"] = int(env["LIANDONG_PORT"])
    if "LIANDONG_PLAYBOOKS" in env:
        values["playbooks"] = Path(env["LIANDONG_PLAYBOOKS"])
    if "LIANDONG_SQLITE_SYNCHRONOUS" in env:
        values["sqlite_synchronous"] = env["LIANDONG_SQLITE_SYNCHRONOUS"]
    if "LIANDONG_BUS" in env:
        values["bus"] = env["LIANDONG_BUS"]
    if "LIANDONG_DATABASE" in env:
        values["database"] = env["LIANDONG_DATABASE"]
    if "LIANDONG_LOG_LEVEL" in env:
        values["log_level"] = env["LIANDONG_LOG_LEVEL"]
    if "LIANDONG_MAX_BODY_BYTES" in env:
        values["max_body_bytes"] = int(env["LIANDONG_MAX_BODY_BYTES"])
    for variable, field_name in (
        ("LIANDONG_KAFKA_FETCH_MAX_WAIT_MS", "kafka_fetch_max_wait_ms"),
        ("LIANDONG_KAFKA_LINGER_MS", "kafka_linger_ms"),
        ("LIANDONG_KAFKA_SESSION_TIMEOUT_MS", "kafka_session_timeout_ms"),
        ("LIANDONG_PG_WRITERS", "pg_writers"),
    ):
        if variable in env:
            values[field_name] = int(env[variable])
    if "LIANDONG_ENGINE_WORKERS" in env:
        values["engine_workers"] = int(env["LIANDONG_ENGINE_WORKERS"])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]
