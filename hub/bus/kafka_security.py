"""TLS and SASL for a Kafka client: settings, and the aiokafka keyword arguments they become.

:class:`ClientSecurity` is what a client needs to reach a secured cluster, with the secret
already resolved (an adapter manifest names only the environment variable that holds the
password; ``adapters/framework/manifest.py`` reads it when the adapter starts).
:func:`client_kwargs` turns it into the arguments every aiokafka client takes
(``security_protocol``, ``ssl_context``, ``sasl_mechanism``, ``sasl_plain_username``,
``sasl_plain_password``); without settings, or with ``PLAINTEXT``, a client is exactly what it
was before these settings existed.

aiokafka reports a failed TLS handshake only as "Unable to bootstrap" (the reason goes to its
log); :func:`tls_diagnosis` repeats the handshake itself so an error can say why (an unknown
CA, a name the certificate does not carry, a broker that does not speak TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hub.errors import InvalidInput

__all__ = [
    "MECHANISMS",
    "PROTOCOLS",
    "ClientSecurity",
    "Mechanism",
    "Protocol",
    "client_kwargs",
    "explain",
    "ssl_context",
    "tls_diagnosis",
]

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PROTOCOLS: tuple[Protocol, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: tuple[Mechanism, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class ClientSecurity:
    """How a client authenticates the cluster and itself.

    ``ca_file`` absent: the system's trusted CAs. ``cert_file`` (+ ``key_file``, unless the
    key is in the same PEM): a client certificate, for clusters that require one.
    ``check_hostname`` off still verifies the certificate chain, only not the name in it.
    """

    protocol: Protocol = "PLAINTEXT"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    check_hostname: bool = True
    sasl_mechanism: Mechanism | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def describe(self) -> str:
        """One line for logs and errors (never the password)."""
        parts: list[str] = [self.protocol]
        if self.uses_tls:
            parts.append(f"CA {self.ca_file or 'system store'}")
            if not self.check_hostname:
                parts.append("hostname not checked")
        if self.uses_sasl:
            parts.append(f"{self.sasl_mechanism} as {self.username!r}")
        return ", ".join(parts)


def _check_file(what: str, path: Path) -> None:
    if not path.is_file():
        raise InvalidInput(f"{what}: {path} does not exist or is not a file")


def ssl_context(security: ClientSecurity) -> ssl.SSLContext:
    """A verifying client context (certificate chain always; hostname unless turned off).

    ``InvalidInput`` names the setting and the file that is missing or unusable."""
    files = (
        ("ca_file", security.ca_file),
        ("cert_file", security.cert_file),
        ("key_file", security.key_file),
    )
    for what, path in files:
        if path is not None:
            _check_file(what, path)
    if security.key_file is not None and security.cert_file is None:
        raise InvalidInput("key_file: given without cert_file")
    try:
        context = ssl.create_default_context(
            cafile=None if security.ca_file is None else str(security.ca_file)
        )
    except (ssl.SSLError, OSError) as exc:
        raise InvalidInput(f"ca_file: {security.ca_file} holds no usable CA: {exc}") from exc
    context.check_hostname = security.check_hostname  # the chain is verified either way
    if security.cert_file is not None:
        key = None if security.key_file is None else str(security.key_file)
        try:
            context.load_cert_chain(str(security.cert_file), key)
        except (ssl.SSLError, OSError) as exc:
            raise InvalidInput(
                f"cert_file/key_file: {security.cert_file} (key {security.key_file or 'in it'})"
                f" is not a usable certificate and key: {exc}"
            ) from exc
    return context


def client_kwargs(security: ClientSecurity | None) -> dict[str, Any]:
    """The aiokafka keyword arguments for these settings (``{}`` when there are none)."""
    if security is None:
        return {}
    kwargs: dict[str, Any] = {"security_protocol": security.protocol}
    if security.uses_tls:
        kwargs["ssl_context"] = ssl_context(security)
    if security.uses_sasl:
        missing = [
            name
            for name, value in (
                ("sasl_mechanism", security.sasl_mechanism),
                ("username", security.username),
                ("password", security.password),
            )
            if not value
        ]
        if missing:
            raise InvalidInput(f"{security.protocol} needs {', '.join(missing)}")
        kwargs["sasl_mechanism"] = security.sasl_mechanism
        kwargs["sasl_plain_username"] = security.username
        kwargs["sasl_plain_password"] = security.password
    return kwargs


def _first_host(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host.strip("[]"), int(port)


async def tls_diagnosis(
    bootstrap: str, security: ClientSecurity | None, timeout_s: float = 5.0
) -> str | None:
    """Why a TLS connection to the first bootstrap server fails, or ``None`` (no TLS in the
    settings, or the handshake succeeds: the trouble is elsewhere)."""
    if security is None or not security.uses_tls:
        return None
    try:
        context = ssl_context(security)
        host, port = _first_host(bootstrap)
    except (InvalidInput, ValueError) as exc:
        return str(exc)
    writer = None
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        return (
            f"TLS: the certificate of {host}:{port} is not trusted "
            f"(certificate verify failed: {exc.verify_message})"
        )
    except ssl.SSLError as exc:
        return f"TLS handshake with {host}:{port} failed: {exc}"
    except TimeoutError:
        return f"TLS handshake with {host}:{port} did not finish in {timeout_s} s"
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc}"
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
    return None


async def explain(bootstrap: str, security: ClientSecurity | None, exc: BaseException) -> str:
    """``Kafka at HOST:PORT: <error>``, with the TLS reason when a handshake is what failed."""
    message = f"Kafka at {bootstrap}: {exc}"
    reason = await tls_diagnosis(bootstrap, security)
    if reason is not None and security is not None:
        message += f" ({reason}; {security.describe()})"
    return message
