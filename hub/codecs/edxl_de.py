"""EDXL-DE 1.0 and 2.0 envelopes ⇄ ``Distribution``, unwrapping the CAP alerts they carry.

``decode_edxl_de`` reads an OASIS EDXL Distribution Element, 1.0
(``urn:oasis:names:tc:emergency:EDXL:DE:1.0``, root ``EDXLDistribution``) or 2.0
(``urn:oasis:names:tc:emergency:EDXL:DE:2.0``, Committee Specification 02: root
``edxlDistribution``; ``EDXLDistribution`` is accepted too), and returns the distribution: its
status, kind and addressing, and its content objects. Every CAP alert inside goes through the
CAP codec (``decode_cap``: schema-validated, CAP 1.1 upgraded) and becomes the canonical
``Incident``; a CAP ``status`` that disagrees with the envelope's ``distributionStatus`` (an
Actual alert in an Exercise distribution) is refused, naming both. Content that is not CAP is
kept, never dropped: other XML verbatim, non-XML content by MIME type, size, digest, URI and
inline data. ``encode_edxl_de`` writes a distribution back; ``decode_edxl_de(encode_edxl_de(d))
== d``.

Gaps, said plainly:
- No OASIS XSD is shipped for EDXL-DE: the 1.0 schema could not be obtained here, and the 2.0
  schema depends on EDXL-CT, EDXL-GSF and GML 3.2 schemas that could not be either. The
  structure is checked in code instead (``edxl_de_mapping``: order, cardinality, closed lists,
  dateTimes, text vs elements), following the standards' element tables.
- DE 2.0 ``extension``, ``link`` and ``other`` elements, and DE 1.0 elements of other
  namespaces after a content object's payload, are refused (not carried yet); DE 2.0
  target-area locations (GML, geo-political) are kept verbatim, not interpreted.
- A signature on a CAP alert inside an envelope is not verified here; see ``signature.py``.

Hostile input is refused as the CAP codec refuses it, with its checks: a size limit, no DTD at
all (so no entity expansion, no external entities), no network or file access.
"""

from __future__ import annotations

from hub.codecs.cap_xml import Node, local_name, namespace, parse_untrusted
from hub.codecs.edxl_de_mapping import EdxlError, Reader
from hub.codecs.edxl_de_model import (
    DE10,
    DE20,
    ContentObject,
    Distribution,
    DistributionStatus,
    DistributionType,
    EmbeddedXml,
    ExplicitAddress,
    OtherContent,
    TargetArea,
    ValueList,
)
from hub.codecs.edxl_de_writer import Writer

__all__ = [
    "MAX_BYTES",
    "ContentObject",
    "Distribution",
    "DistributionStatus",
    "DistributionType",
    "EdxlError",
    "EmbeddedXml",
    "ExplicitAddress",
    "OtherContent",
    "TargetArea",
    "ValueList",
    "decode_edxl_de",
    "encode_edxl_de",
    "looks_like_edxl_de",
]

MAX_BYTES = 4 << 20
"""The default size limit of a distribution (4 MiB: it may carry several alerts and data)."""

_VERSIONS = {DE10: "1.0", DE20: "2.0"}
_ROOTS = {"1.0": ("EDXLDistribution",), "2.0": ("edxlDistribution", "EDXLDistribution")}


def decode_edxl_de(data: bytes, *, max_bytes: int = MAX_BYTES) -> Distribution:
    """EDXL-DE 1.0 or 2.0 XML → the ``Distribution`` with its CAP alerts decoded.

    Raises ``EdxlError`` (an ``InvalidInput``) naming the problem, the line and the element: not
    XML, oversize, a DTD, an unknown namespace or root, a structure the standard does not
    allow, a CAP alert that does not decode, or a CAP status that disagrees with the envelope.
    """
    root = parse_untrusted(data, max_bytes, error=EdxlError, kind="EDXL-DE")
    version = _version(root)
    return Reader(version, max_bytes).read(root)


def encode_edxl_de(dist: Distribution) -> bytes:
    """A ``Distribution`` → EDXL-DE XML of its ``version`` (UTF-8, with an XML declaration).

    Raises ``EdxlError`` when a value cannot be written as XML (control characters) or an
    incident cannot be written as valid CAP 1.2.
    """
    return Writer(dist).write()


def looks_like_edxl_de(data: bytes) -> bool:
    """Whether XML bytes are an EDXL-DE envelope rather than a bare CAP alert (a cheap sniff of
    the first kilobytes; ``decode_edxl_de`` is the real check)."""
    head = data[:4096].lower()
    return b"edxldistribution" in head and b"urn:oasis:names:tc:emergency:edxl:de:" in head


def _version(root: Node) -> str:
    ns, name = namespace(root.tag), local_name(root.tag)
    version = _VERSIONS.get(ns or "")
    if version is None:
        where = "has no namespace" if ns is None else f"is in namespace '{ns}'"
        raise EdxlError(
            f"root element {where}; EDXL-DE needs '{DE10}' or '{DE20}'",
            line=root.sourceline,
            element=name,
        )
    if name not in _ROOTS[version]:
        raise EdxlError(
            f"an EDXL-DE {version} root element must be '{_ROOTS[version][0]}'",
            line=root.sourceline,
            element=name,
        )
    return version
