"""``liandong users``: console users (duty officers, coordinators, administrators).

Passwords come from ``--password-file`` (its first line) or are asked twice at a terminal;
they are never echoed, never taken from the command line, and stored only as argon2 hashes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from hub import accounts
from hub.errors import HubError
from hub.region import load_region
from hub.settings import Settings, from_env
from hub.store import users as store
from hub.store.sql import Connection

app = typer.Typer(
    help="Console users: duty officers (one jurisdiction), coordinators, administrators.",
    no_args_is_help=True,
)

DataOption = Annotated[
    Path | None, typer.Option("--data", help="data directory [env LIANDONG_DATA]")
]
PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file", help="read the password from this file's first line ('-': stdin)"
    ),
]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _password(path: Path | None) -> str:
    if path is not None:
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        except OSError as exc:
            _fail(f"--password-file {path}: {exc.strerror or exc}")
        lines = text.splitlines()
        password = lines[0] if lines else ""
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True)
        if typer.prompt("Password again", hide_input=True) != password:
            _fail("the two passwords differ")
    else:
        _fail("give --password-file FILE (standard input is not a terminal to ask at)")
    try:
        accounts.check_password(password)
    except HubError as exc:
        _fail(str(exc))
    return password


def _run(data: Path | None, job: object) -> object:
    from hub.cli import run_job  # the command line's one way to a committed job

    try:
        return run_job(from_env(data=data), job)  # type: ignore[arg-type]
    except HubError as exc:
        _fail(str(exc))
    return None


def seed_demo(settings: Settings, url: str) -> list[str]:
    """Seed the demo's console users (one duty officer per city, a coordinator); returns the
    lines that tell how to sign in."""
    from hub.cli import run_job

    region = load_region()
    run_job(
        settings,
        lambda conn: accounts.seed_demo_users(conn, region, time.time_ns() // 1_000_000),
    )
    officers = [f"officer.{slug}" for slug in accounts.DEMO_CITIES.values()]
    return [
        f"  sign in at {url} as '{officers[1]}' (苏州市 duty officer), '{officers[0]}', ... "
        f"or '{accounts.DEMO_COORDINATOR}'; demo password: {accounts.DEMO_PASSWORD}",
        f"  demo officers: {', '.join(officers)}",
    ]


@app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="sign-in name, e.g. officer.wujiang")],
    role: Annotated[str, typer.Option(help="officer, coordinator or admin")] = "officer",
    jurisdiction: Annotated[
        str | None, typer.Option(help="GB/T 2260 code an officer acts for")
    ] = None,
    name: Annotated[str | None, typer.Option(help="display name, e.g. 吴江区值班员")] = None,
    password_file: PasswordFile = None,
    data: DataOption = None,
) -> None:
    """Add a user. An officer acts for one jurisdiction (and, for a city, its districts)."""
    region = load_region()
    try:
        user = accounts.new_user(
            region, username, role, jurisdiction, name, time.time_ns() // 1_000_000
        )
    except HubError as exc:
        _fail(str(exc))
    password = _password(password_file)

    def job(conn: Connection) -> None:
        accounts.add_user(conn, user, password)

    _run(data, job)
    where = ""
    if user.jurisdiction is not None:
        j = region.jurisdiction(user.jurisdiction)
        where = f" for {j.name_zh} {j.name_en} ({user.jurisdiction})"
    typer.echo(f"user '{user.username}' added: {user.role}{where}")


@app.command("list")
def list_(data: DataOption = None) -> None:
    """List users: name, role, jurisdiction, state (never password hashes)."""
    found = _run(data, store.list_users)
    assert isinstance(found, list)
    for user in found:
        state = "disabled" if user.disabled else "active"
        typer.echo(
            f"{user.username}\t{user.role}\t{user.jurisdiction or '-'}\t{state}\t{user.name}"
        )


@app.command("disable")
def disable(
    username: Annotated[str, typer.Argument()],
    enable: Annotated[bool, typer.Option("--enable", help="enable the user again")] = False,
    data: DataOption = None,
) -> None:
    """Disable a user (their sessions end at once), or enable them again with --enable."""
    _run(data, lambda conn: accounts.disable(conn, username, not enable))
    typer.echo(f"user '{username}' {'enabled' if enable else 'disabled'}")


@app.command("passwd")
def passwd(
    username: Annotated[str, typer.Argument()],
    password_file: PasswordFile = None,
    data: DataOption = None,
) -> None:
    """Set a user's password; their open sessions end."""
    password = _password(password_file)
    _run(data, lambda conn: accounts.change_password(conn, username, password))
    typer.echo(f"password of '{username}' changed; their sessions ended")
