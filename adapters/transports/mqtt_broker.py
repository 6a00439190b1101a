"""A local mosquitto running Liandong's deployment configuration, for tests, benchmarks and
development.

:class:`LocalBroker` copies ``deploy/mosquitto/mosquitto.conf`` and its ACL into a directory of
its own and rewrites only the lines that name a place on the machine: the listener (127.0.0.1
and a free port), the password file (generated with ``mosquitto_passwd``), the ACL file, the
persistence directory, the log file, and ``user`` (mosquitto started as root drops to that user;
here, to the one running it). Every other line -- persistence, autosave, queue limits,
TCP_NODELAY, log levels -- is the deployment's own. The broker can be killed (SIGKILL) and
started again on the same port and persistence directory, and is always stopped by its pid.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent.parent
DEPLOY = REPO / "deploy" / "mosquitto"
MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class BrokerError(RuntimeError):
    """mosquitto did not start, or the configuration could not be derived."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def render_config(
    template: str,
    *,
    port: int,
    password_file: Path,
    acl_file: Path,
    data_dir: Path,
    log_file: Path,
    user: str,
) -> str:
    """The template with its machine-specific lines replaced; each must be present once."""
    replacements = {
        "listener": f"listener {port} {HOST}",
        "password_file": f"password_file {password_file}",
        "acl_file": f"acl_file {acl_file}",
        "persistence_location": f"persistence_location {data_dir}/",
        "log_dest": f"log_dest file {log_file}",
        "user": f"user {user}",
    }
    seen: dict[str, int] = dict.fromkeys(replacements, 0)
    lines = []
    for line in template.splitlines():
        words = line.split()
        key = words[0] if words and not line.startswith("#") else None
        if key in replacements and not (key == "log_dest" and words[1:2] != ["file"]):
            seen[key] += 1
            lines.append(replacements[key])
        else:
            lines.append(line)
    wrong = {k: n for k, n in seen.items() if n != 1}
    if wrong:
        raise BrokerError(f"expected each of these lines once in the template: {wrong}")
    return "\n".join(lines) + "\n"


def write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """A mosquitto password file (hashed) for ``users`` (name -> password)."""
    path.write_text("".join(f"{name}:{password}\n" for name, password in users.items()))
    path.chmod(0o600)
    done = subprocess.run(
        [MOSQUITTO_PASSWD, "-U", str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BrokerError(f"mosquitto_passwd -U failed: {done.stderr.strip() or done.stdout}")


class LocalBroker:
    """mosquitto with the deployment's configuration in ``root`` (config, passwd, data, log)."""

    def __init__(
        self,
        root: Path,
        users: Mapping[str, str],
        *,
        port: int | None = None,
        template: Path = DEPLOY / "mosquitto.conf",
        acl: Path = DEPLOY / "acl",
    ) -> None:
        self.root = Path(root)
        self.users = dict(users)
        self.port = port
        self.template = template
        self.acl = acl
        self.data_dir = self.root / "data"
        self.log_path = self.root / "mosquitto.log"
        self.config_path = self.root / "mosquitto.conf"
        self.runs = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return HOST

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout_s: float = START_TIMEOUT_S) -> LocalBroker:
        """Start mosquitto (first time: on a free port) and wait until it accepts connections.
        Later starts reuse the port and the persistence directory (a restart)."""
        if self.running:
            raise BrokerError(f"mosquitto already running (pid {self.pid})")
        first = self.port is None
        for _ in range(3 if first else 1):
            if first:
                self.port = free_port()
            self._prepare()
            try:
                self._spawn(timeout_s)
                return self
            except BrokerError:
                self._reap(signal.SIGKILL)
                if not first or "address already in use" not in self._stderr().lower():
                    raise
        raise BrokerError(f"no free port for mosquitto: {self._stderr()}")

    def kill(self) -> None:
        """SIGKILL (a crash: nothing is saved beyond what autosave already wrote)."""
        self._reap(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its database and exits."""
        self._reap(signal.SIGTERM)

    def restart(self, timeout_s: float = START_TIMEOUT_S) -> LocalBroker:
        self.stop()
        return self.start(timeout_s)

    def close(self) -> None:
        self._reap(signal.SIGKILL)

    def __enter__(self) -> LocalBroker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- inside ----------------------------------------------------------------------------------
    def _prepare(self) -> None:
        assert self.port is not None
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        password_file = self.root / "passwd"
        if not password_file.exists():
            write_password_file(password_file, self.users)
        acl_file = self.root / "acl"
        shutil.copyfile(self.acl, acl_file)
        config = render_config(
            self.template.read_text(),
            port=self.port,
            password_file=password_file,
            acl_file=acl_file,
            data_dir=self.data_dir,
            log_file=self.log_path,
            user=getpass.getuser(),
        )
        self.config_path.write_text(config)

    def _stderr_path(self) -> Path:
        return self.root / f"mosquitto-{self.runs}.err"

    def _stderr(self) -> str:
        path = self._stderr_path()
        text = path.read_text(errors="replace") if path.exists() else ""
        return text[-3000:] + self.log_text()[-2000:]

    def _spawn(self, timeout_s: float) -> None:
        self.runs += 1
        with self._stderr_path().open("wb") as err:
            self._proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in a terminal goes to the test, not to it
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(
                    f"mosquitto exited with {self._proc.returncode}: {self._stderr()}"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.5):
                return
            time.sleep(0.02)
        raise BrokerError(f"mosquitto not accepting connections after {timeout_s} s")

    def _reap(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
