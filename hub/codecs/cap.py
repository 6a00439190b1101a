"""CAP XML ↔ the canonical incident.

``decode_cap`` reads CAP 1.2 (``urn:oasis:names:tc:emergency:cap:1.2``) or CAP 1.1 XML, validates
it against the OASIS schema shipped in ``schemas/`` and returns the canonical ``Incident``;
``encode_cap`` writes an incident as CAP 1.2 XML that is valid against the same schema. Every
element CAP defines survives the round trip: ``decode_cap(encode_cap(i)) == i``, and
``encode_cap(decode_cap(x))`` equals ``x`` as an element tree, with two caveats of the canonical
model: an omitted ``language`` comes back as its default ``en-US``, and ``altitude``/``ceiling``
come back as the same number, not always the same digits (``1500.0`` → ``1500``). An XML
Signature (``ds:Signature``, allowed by CAP after the last ``info``) has no place in the canonical
incident: it is accepted but not kept (it signs the XML bytes, which conversion does not keep).

Hostile input is refused before it costs anything: a size limit, no DTD at all (so no entity
expansion and no external entities), no network and no file access, libxml2's depth limits.
Every refusal is a ``CapError`` (an ``InvalidInput``) that names the problem, with the line and
the element where there is one. The sender is not checked against GB/T 2260 here; that is the
intake's job.
"""

from __future__ import annotations

from hub.codecs.cap_mapping import incident_to_tree, tree_to_incident
from hub.codecs.cap_xml import (
    CAP10,
    CAP11,
    CAP12,
    CapError,
    Node,
    local_name,
    namespace,
    parse_untrusted,
    serialise,
    validate,
)
from hub.model.incident import Incident

__all__ = ["MAX_BYTES", "CapError", "decode_cap", "encode_cap"]

MAX_BYTES = 1 << 20
"""The default size limit of a CAP message (1 MiB); larger bodies are refused unread."""


def decode_cap(data: bytes, *, max_bytes: int = MAX_BYTES) -> Incident:
    """CAP 1.2 or 1.1 XML → the canonical incident, validated against the OASIS schema.

    Raises ``CapError`` naming the problem: not XML, oversize, a DTD, the wrong namespace or
    root, a schema violation (line, element, what is wrong), or a CAP rule the canonical model
    enforces (references format, closed polygons, restriction for Restricted scope, ...).
    """
    root = parse_untrusted(data, max_bytes)
    ns = _check_root(root)
    if ns == CAP11:
        _very_likely(root)
        validate(root, CAP11)
        _upgrade(root)
        try:
            validate(root, CAP12)
        except CapError as exc:
            raise CapError(
                f"{exc.problem} (CAP 1.1 read as CAP 1.2)", line=exc.line, element=exc.element
            ) from None
    else:
        validate(root, CAP12)
    return tree_to_incident(root)


def encode_cap(incident: Incident) -> bytes:
    """The canonical incident → CAP 1.2 XML (UTF-8, with an XML declaration).

    The output is validated against the shipped CAP 1.2 schema; an incident CAP cannot express
    (a ``language`` that is no language tag, control characters, a non-finite altitude) raises
    ``CapError`` naming the element.
    """
    root = incident_to_tree(incident)
    try:
        validate(root, CAP12)
    except CapError as exc:
        raise CapError(
            f"the incident cannot be written as valid CAP 1.2: {exc.problem}", element=exc.element
        ) from None
    return serialise(root)


def _check_root(root: Node) -> str:
    tag = str(root.tag)
    ns, name = namespace(tag), local_name(tag)
    line = root.sourceline
    if ns in (CAP12, CAP11):
        if name != "alert":
            raise CapError("a CAP message's root element must be 'alert'", line=line, element=name)
        return ns
    if ns == CAP10:
        raise CapError("CAP 1.0 is not accepted; send CAP 1.2 (or 1.1)", line=line)
    where = "has no namespace" if ns is None else f"is in namespace '{ns}'"
    raise CapError(
        f"root element {where}; CAP needs '{CAP12}' (or '{CAP11}')",
        line=line,
        element=name,
    )


def _very_likely(root: Node) -> None:
    """CAP 1.0's certainty "Very Likely": CAP 1.1 says it SHOULD be treated as "Likely"."""
    certainty = f"{{{CAP11}}}certainty"
    for info in root:
        for child in info:
            if child.tag == certainty and child.text == "Very Likely":
                child.text = "Likely"


def _upgrade(root: Node) -> None:
    """Move a schema-valid CAP 1.1 tree into the CAP 1.2 namespace, in place."""
    old, new = f"{{{CAP11}}}", f"{{{CAP12}}}"
    stack = [root]
    while stack:
        element = stack.pop()
        tag = element.tag
        if isinstance(tag, str) and tag.startswith(old):
            element.tag = new + tag[len(old) :]
            stack.extend(element)
