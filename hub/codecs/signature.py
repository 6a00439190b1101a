"""Authenticity of CAP messages: an enveloped XML Signature verified against trusted certificates.

CAP 1.2 lets a sender sign an alert with an enveloped XML-DSig signature (``ds:Signature``, the
last child of ``alert``). ``verify_cap_signature`` checks one, for an adapter that is configured
with the certificates it trusts (its city's signing certificate, or the CA that issues them):

- the message is first decoded by the CAP codec, so the hardened parser refuses a DTD, entity
  tricks and oversize input before signxml sees a byte, and only valid CAP is verified;
- exactly one signature, and its one reference must be the whole alert (``URI=""``): a
  signature over a part would let the rest be changed (signature wrapping);
- the signing certificate must be one of the trusted certificates, or chain to one of them;
  a signature without a certificate must verify with one of the trusted certificates;
- any change to the signed alert, one byte in its body, fails the digest.

Every refusal is a ``SignatureError`` (an ``InvalidInput``) saying which of these failed.
"""

from __future__ import annotations

from base64 import b64decode
from binascii import Error as Base64Error
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from signxml.exceptions import InvalidCertificate, InvalidDigest, SignXMLException
from signxml.util import X509CertChainVerifier
from signxml.verifier import SignatureConfiguration, XMLVerifier

from hub.codecs.cap import MAX_BYTES, decode_cap
from hub.codecs.cap_xml import XMLDSIG, CapError, parse

__all__ = ["SignatureError", "verify_cap_signature"]

_DS = f"{{{XMLDSIG}}}"


class SignatureError(CapError):
    """A CAP message whose signature is missing, malformed, untrusted or does not verify."""


def verify_cap_signature(
    data: bytes, trusted_pem: list[bytes], *, max_bytes: int = MAX_BYTES
) -> None:
    """Verify the enveloped XML Signature of a CAP message against trusted X.509 certificates.

    ``trusted_pem`` holds PEM certificates (a file may hold several): signing certificates
    pinned as they are, or CAs whose certificates are trusted. Returns when the whole alert is
    signed by a trusted certificate and unchanged since; raises ``SignatureError`` otherwise,
    also for an unsigned message (call this only where signatures are required).
    """
    trusted = _load_trusted(trusted_pem)
    try:
        decode_cap(data, max_bytes=max_bytes)
    except CapError as exc:
        raise SignatureError(
            f"not a valid CAP message: {exc.problem}", line=exc.line, element=exc.element
        ) from None
    root = parse(bytes(data))[0]
    signature = _the_signature(root)
    signer = _signer_certificate(signature)
    try:
        if signer is not None and any(_same(signer, cert) for cert in trusted):
            _Verifier(trusted).verify(root, x509_cert=signer, expect_config=_CONFIG)
        elif signer is not None:
            _Verifier(trusted).verify(root, expect_config=_CONFIG)
        else:
            _verify_with_any(root, trusted)
    except InvalidDigest:
        raise SignatureError(
            "the alert was changed after it was signed (digest mismatch)",
            line=signature.sourceline,
            element="ds:Signature",
        ) from None
    except InvalidCertificate as exc:
        raise SignatureError(
            f"the signing certificate is not trusted: {exc}",
            line=signature.sourceline,
            element="ds:Signature",
        ) from None
    except SignXMLException as exc:
        raise SignatureError(
            f"the signature does not verify: {exc}",
            line=signature.sourceline,
            element="ds:Signature",
        ) from None


_CONFIG = SignatureConfiguration(require_x509=True, expect_references=1)


def _load_trusted(trusted_pem: list[bytes]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for number, pem in enumerate(trusted_pem, 1):
        try:
            certs.extend(x509.load_pem_x509_certificates(pem))
        except ValueError as exc:
            raise SignatureError(
                f"trusted certificate {number} is not a PEM certificate: {exc}"
            ) from None
    if not certs:
        raise SignatureError("no trusted certificates are configured: nothing to verify against")
    return certs


def _the_signature(root: Any) -> Any:
    """The one enveloped signature covering the whole alert, or a SignatureError."""
    found = list(root.iter(f"{_DS}Signature"))
    if not found:
        raise SignatureError(
            "the message is not signed (no ds:Signature); this sender's messages must be signed",
            line=root.sourceline,
            element="alert",
        )
    if len(found) > 1:
        raise SignatureError(
            f"the message has {len(found)} signatures; exactly one is accepted",
            line=found[1].sourceline,
            element="ds:Signature",
        )
    signature = found[0]
    if signature.getparent() is not root:
        raise SignatureError(
            "the signature must be enveloped: a child of 'alert', not inside another element",
            line=signature.sourceline,
            element="ds:Signature",
        )
    references = list(signature.iter(f"{_DS}Reference"))
    if len(references) != 1 or references[0].get("URI") != "":
        raise SignatureError(
            'the signature must cover the whole alert: one ds:Reference with URI=""',
            line=references[0].sourceline if references else signature.sourceline,
            element="ds:Reference",
        )
    return signature


def _signer_certificate(signature: Any) -> x509.Certificate | None:
    """The first certificate of the signature's KeyInfo (the signer's, by convention)."""
    for node in signature.iter(f"{_DS}X509Certificate"):
        try:
            return x509.load_der_x509_certificate(b64decode("".join((node.text or "").split())))
        except (ValueError, Base64Error):
            raise SignatureError(
                "ds:X509Certificate is not a base64 DER certificate",
                line=node.sourceline,
                element="ds:X509Certificate",
            ) from None
    return None


def _same(a: x509.Certificate, b: x509.Certificate) -> bool:
    return a.public_bytes(Encoding.DER) == b.public_bytes(Encoding.DER)


def _verify_with_any(root: Any, trusted: list[x509.Certificate]) -> None:
    """A signature that names no certificate must verify with one of the trusted ones."""
    last: SignXMLException | None = None
    for cert in trusted:
        try:
            _Verifier(trusted).verify(root, x509_cert=cert, expect_config=_CONFIG)
            return
        except InvalidDigest:
            raise  # the right key, a changed alert: say so
        except SignXMLException as exc:
            last = exc
    raise SignXMLException(f"it verifies with none of the trusted certificates ({last})")


class _TrustedChain(X509CertChainVerifier):
    """signxml's chain verification, anchored in the configured certificates (not a file)."""

    def __init__(self, trusted: list[x509.Certificate], **kwargs: Any) -> None:
        super().__init__(ca_pem_file="(configured certificates)", **kwargs)  # type: ignore[no-untyped-call]
        self.trusted = trusted

    @property
    def store(self) -> x509.verification.Store:
        return x509.verification.Store(self.trusted)


class _Verifier(XMLVerifier):
    def __init__(self, trusted: list[x509.Certificate]) -> None:
        super().__init__()
        self.trusted = trusted

    def get_cert_chain_verifier(self, ca_pem_file: Any, ee_policy: Any, ca_policy: Any) -> Any:
        return _TrustedChain(
            self.trusted,
            verification_time=self._get_cert_verification_time(),  # type: ignore[no-untyped-call]
            ee_policy=ee_policy,
            ca_policy=ca_policy,
        )
