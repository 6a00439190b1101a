"""An adapter configured with trusted certificates takes only signed, unaltered CAP.

The keys and certificates are made at test time (``tests/unit/test_cap_signature.py`` builds
the small PKI); the codec is the one ``liandong adapter run`` builds from the manifest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.framework.codec import load_codec
from adapters.framework.manifest import CodecSpec
from hub.errors import InvalidInput
from hub.model.incident import Incident
from tests.unit.test_cap_signature import SPILL, Party, pki, sign  # noqa: F401 - pki: a fixture


def _codec(folder: Path, trusted: Party | None) -> object:
    names = []
    if trusted is not None:
        (folder / "city-ca.pem").write_bytes(trusted.pem)
        names = ["city-ca.pem"]
    return load_codec(CodecSpec(kind="cap", trusted_certificates=names), folder)


def test_signed_cap_passes_and_anything_else_is_refused(
    tmp_path: Path,
    pki: dict[str, Party],  # noqa: F811 - the fixture imported above
) -> None:
    codec = _codec(tmp_path, pki["ca"])
    signed = sign(pki["wujiang"])
    decoded = codec.decode(signed, "incidents")  # type: ignore[attr-defined]
    assert isinstance(decoded, Incident)

    at = signed.index(b"<headline>") + len(b"<headline>")
    altered = signed[:at] + bytes([signed[at] ^ 0x01]) + signed[at + 1 :]
    for bad in (altered, SPILL, sign(pki["outsider"])):
        with pytest.raises(InvalidInput):
            codec.decode(bad, "incidents")  # type: ignore[attr-defined]

    # Without certificates configured the adapter takes CAP as it comes, signed or not.
    plain = _codec(tmp_path / "..", None)
    assert isinstance(plain.decode(SPILL, "incidents"), Incident)  # type: ignore[attr-defined]


def test_certificates_must_exist_and_apply_to_cap_only(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"trusted certificate missing\.pem"):
        load_codec(CodecSpec(kind="cap", trusted_certificates=["missing.pem"]), tmp_path)
    with pytest.raises(ValueError, match="kind: cap"):
        CodecSpec(kind="canonical-json", trusted_certificates=["ca.pem"])
    with pytest.raises(ValueError, match="inside the adapter folder"):
        CodecSpec(kind="cap", trusted_certificates=["../../etc/ssl/ca.pem"])
