"""Signed CAP: enveloped XML-DSig verified against trusted certificates made here, at test time."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree  # type: ignore[import-untyped]
from signxml import XMLSigner, methods

from hub.codecs.cap import decode_cap
from hub.codecs.signature import SignatureError, verify_cap_signature
from hub.errors import InvalidInput

SPILL = (
    Path(__file__).resolve().parent.parent / "fixtures/cap/liandong_taipu_spill.xml"
).read_bytes()
NOW = dt.datetime.now(dt.UTC)
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass
class Party:
    key: Key
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(Encoding.PEM)


def _cert(subject: str, key: Key, issuer: Party | None, *, ca: bool, days: int = 30) -> Any:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    usage = {k: False for k in ("digital_signature", "content_commitment", "key_encipherment",
             "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign",
             "encipher_only", "decipher_only")}  # fmt: skip
    usage |= {"key_cert_sign": True, "crl_sign": True} if ca else {"digital_signature": True}
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=2))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    )
    return builder.sign(signer_key, hashes.SHA256())


def _party(subject: str, issuer: Party | None = None, *, ca: bool = False, days: int = 30) -> Party:
    key = ec.generate_private_key(ec.SECP256R1())
    return Party(key, _cert(subject, key, issuer, ca=ca, days=days))


@pytest.fixture(scope="module")
def pki() -> dict[str, Party]:
    """Suzhou's CA and Wujiang's signing certificate from it; an outsider's CA and signer."""
    ca = _party("Suzhou Emergency Signing CA", ca=True)
    other_ca = _party("Somebody Else CA", ca=True)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "ca": ca,
        "wujiang": _party("Wujiang District EMB", ca),
        "wujiang_rsa": Party(rsa_key, _cert("Wujiang RSA", rsa_key, ca, ca=False)),
        "outsider": _party("Outsider", other_ca),
        "other_ca": other_ca,
        "expired": _party("Expired", ca, days=-1),
    }


def sign(party: Party, data: bytes = SPILL, *, with_cert: bool = True) -> bytes:
    algorithm = "rsa-sha256" if isinstance(party.key, rsa.RSAPrivateKey) else "ecdsa-sha256"
    signer = XMLSigner(method=methods.enveloped, signature_algorithm=algorithm,
                       digest_algorithm="sha256")  # fmt: skip
    root = etree.fromstring(data)
    signed = signer.sign(root, key=party.key, cert=[party.pem] if with_cert else None)
    out = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    assert isinstance(out, bytes)
    return out


def refused(data: bytes, trusted: list[bytes]) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify_cap_signature(data, trusted)
    assert isinstance(caught.value, InvalidInput)
    return caught.value


def test_a_signed_alert_verifies_against_its_ca_or_its_pinned_certificate(
    pki: dict[str, Party],
) -> None:
    for name in ("wujiang", "wujiang_rsa"):
        signed = sign(pki[name])
        verify_cap_signature(signed, [pki["ca"].pem])
        verify_cap_signature(signed, [pki["other_ca"].pem + pki[name].pem])  # pinned, in a bundle
        assert decode_cap(signed) == decode_cap(SPILL)  # the signature is allowed and not kept
    without_cert = sign(pki["wujiang"], with_cert=False)
    verify_cap_signature(without_cert, [pki["outsider"].pem, pki["wujiang"].pem])


def test_one_changed_byte_in_the_body_fails(pki: dict[str, Party]) -> None:
    signed = sign(pki["wujiang"])
    at = signed.index(b"<sender>320509") + len(b"<sender>32050")
    altered = signed[:at] + b"8" + signed[at + 1 :]  # 320509 -> 320508: still valid CAP
    assert decode_cap(altered).sender == "320508"
    error = refused(altered, [pki["ca"].pem])
    assert "changed after it was signed" in str(error) and error.element == "ds:Signature"
    assert error.line == altered[: altered.index(b"<ds:Signature")].count(b"\n") + 1
    text = signed.index("危化品".encode())
    reworded = signed[:text] + "化学品".encode() + signed[text + len("危化品".encode()) :]
    assert "changed after it was signed" in str(refused(reworded, [pki["ca"].pem]))
    value = signed.index(b"<ds:SignatureValue>") + len(b"<ds:SignatureValue>") + 5
    forged = signed[:value] + (b"A" if signed[value : value + 1] != b"A" else b"B")
    forged += signed[value + 1 :]
    assert "does not verify" in str(refused(forged, [pki["ca"].pem]))
    no_cert = sign(pki["wujiang"], with_cert=False)
    at = no_cert.index(b"<sender>320509") + len(b"<sender>32050")
    altered = no_cert[:at] + b"8" + no_cert[at + 1 :]
    assert "changed after it was signed" in str(refused(altered, [pki["wujiang"].pem]))


def test_untrusted_or_expired_certificates_fail(pki: dict[str, Party]) -> None:
    outsider = sign(pki["outsider"])
    assert "not trusted" in str(refused(outsider, [pki["ca"].pem]))
    assert "not trusted" in str(refused(sign(pki["expired"]), [pki["ca"].pem]))
    assert "none of the trusted" in str(
        refused(sign(pki["outsider"], with_cert=False), [pki["wujiang"].pem])
    )
    self_made = _party("Wujiang District EMB")  # same name, own key, no CA
    assert "not trusted" in str(refused(sign(self_made), [pki["ca"].pem]))


def test_unsigned_wrapped_and_hostile_messages_are_refused(pki: dict[str, Party]) -> None:
    error = refused(SPILL, [pki["ca"].pem])
    assert "not signed" in str(error) and error.element == "alert"
    signed = sign(pki["wujiang"])
    partial = signed.replace(b'<ds:Reference URI="">', b'<ds:Reference URI="#info">')
    assert 'URI=""' in str(refused(partial, [pki["ca"].pem]))
    signature = signed[signed.index(b"<ds:Signature") : signed.index(b"</alert>")]
    twice = signed.replace(b"</alert>", signature + b"</alert>")
    assert "exactly one" in str(refused(twice, [pki["ca"].pem]))
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY l0 "lol">'
        + b"".join(b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10) for i in range(1, 10))
        + b"]>" + signed[signed.index(b"<alert") :].replace(b"320509", b"&l9;", 1)
    )  # fmt: skip
    start = time.perf_counter()
    assert "DTDs are not accepted" in str(refused(laughs, [pki["ca"].pem]))
    assert time.perf_counter() - start < 1.0
    assert "no trusted certificates" in str(refused(signed, []))
    assert "not a PEM certificate" in str(refused(signed, [b"not a certificate"]))
