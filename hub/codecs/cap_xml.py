"""The XML side of the CAP codec: namespaces, the hardened parser, the shipped schemas, and
schema errors turned into messages that name the line, the element and the problem."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from importlib import resources
from typing import Any, Protocol, cast

from lxml import etree  # type: ignore[import-untyped]

from hub.errors import InvalidInput

CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"
CAP11 = "urn:oasis:names:tc:emergency:cap:1.1"
CAP10 = "http://www.incident.com/cap/1.0"
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"
DATETIME_ELEMENTS = frozenset({"sent", "effective", "onset", "expires"})

# CAP 1.2's sequences, in CAP's order; the codec reads and writes exactly these.
ALERT = (
    "identifier", "sender", "sent", "status", "msgType", "source", "scope", "restriction",
    "addresses", "code", "note", "references", "incidents", "info",
)  # fmt: skip
INFO = (
    "language", "category", "event", "responseType", "urgency", "severity", "certainty",
    "audience", "eventCode", "effective", "onset", "expires", "senderName", "headline",
    "description", "instruction", "web", "contact", "parameter", "resource", "area",
)  # fmt: skip
RESOURCE = ("resourceDesc", "mimeType", "size", "uri", "derefUri", "digest")
AREA = ("areaDesc", "polygon", "circle", "geocode", "altitude", "ceiling")
PAIR = ("valueName", "value")
CAP_ELEMENTS = frozenset({"alert", *ALERT, *INFO, *RESOURCE, *AREA, *PAIR})


class CapError(InvalidInput):
    """CAP input that cannot be decoded, or an incident that cannot be written as CAP.

    ``line`` and ``element`` locate the problem when it has a place in the document;
    ``problem`` is the bare description. ``str(error)`` combines them:
    "line 7: element 'urgency': 'Soon' is not one of Immediate, Expected, ...".
    """

    def __init__(self, problem: str, *, line: int | None = None, element: str | None = None):
        self.problem = problem
        self.line = line
        self.element = element
        where = [f"line {line}"] if line else []
        if element:
            where.append(f"element '{element}'")
        super().__init__(": ".join([*where, problem]))


class Node(Protocol):
    """The part of lxml's element API the codec uses (lxml ships no type hints here)."""

    tag: Any  # str for elements; comments and PIs are removed by the parser
    text: str | None
    sourceline: int | None

    def __iter__(self) -> Iterator[Node]: ...
    def getnext(self) -> Node | None: ...
    def getroottree(self) -> Any: ...


def local_name(tag: str) -> str:
    """'{ns}name' → 'name'."""
    return tag.rpartition("}")[2]


def namespace(tag: str) -> str | None:
    """'{ns}name' → 'ns'; None without a namespace."""
    return tag[1:].partition("}")[0] if tag.startswith("{") else None


def display(tag: str) -> str:
    """An element's name for messages: CAP's own bare, any other with its namespace."""
    ns = namespace(tag)
    if ns in (CAP12, CAP11):
        return local_name(tag)
    if ns is None:
        return f"{tag} (no namespace)"
    return tag


class _Tools(threading.local):
    """A parser and compiled schemas per thread: lxml's are not to be shared between threads."""

    def __init__(self) -> None:
        self.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            dtd_validation=False,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            attribute_defaults=False,
            collect_ids=False,
        )
        self.parser.resolvers.add(_RefuseAll())
        self.schemas: dict[str, Any] = {}

    def schema(self, ns: str) -> Any:
        found = self.schemas.get(ns)
        if found is None:
            name = "CAP-v1.2.xsd" if ns == CAP12 else "CAP-v1.1.xsd"
            text = resources.files("hub.codecs").joinpath("schemas", name).read_bytes()
            found = self.schemas[ns] = etree.XMLSchema(etree.fromstring(text, self.parser))
        return found


class _RefuseAll(etree.Resolver):  # type: ignore[misc]
    """Belt and braces: should libxml2 ever ask for an external resource, it gets nothing."""

    def resolve(self, url: str, pubid: str, context: Any) -> Any:
        return self.resolve_string("", context)


_TOOLS = _Tools()
_SYNTAX_WHERE = re.compile(r",? line \d+, column \d+$")


def parse(data: bytes) -> tuple[Node, Any]:
    """Parse with the hardened parser: (root, docinfo). Raises CapError if not well-formed."""
    try:
        root = etree.fromstring(data, _TOOLS.parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (0, 0)
        message = _SYNTAX_WHERE.sub("", str(exc.msg or "not XML"))
        raise CapError(f"column {column}: not well-formed XML: {message}", line=line) from None
    node = cast(Node, root)
    return node, node.getroottree().docinfo


DOCTYPE_FORMS = tuple("<!DOCTYPE".encode(codec) for codec in ("utf-8", "utf-16-le", "utf-16-be"))
DTD_REFUSED = "DTDs are not accepted (no DOCTYPE, entity declarations or external references)"


def parse_untrusted(
    data: bytes, max_bytes: int, *, error: type[CapError] = CapError, kind: str = "CAP"
) -> Node:
    """Untrusted XML bytes → the root element, or ``error`` naming the problem: not bytes,
    oversize, empty, any DTD (found by a scan before parsing and by the parser), not XML.
    Shared by every XML codec (CAP, EDXL-DE) so hostile input meets the same refusals."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise error(f"{kind} input must be bytes, not {type(data).__name__}")
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > max_bytes:
        raise error(f"message is {size} bytes; the limit is {max_bytes} bytes")
    data = bytes(data)
    if not data.strip():
        raise error("empty body: not XML")
    doctype_at = doctype_in_prolog(data)
    if doctype_at >= 0:
        raise error(DTD_REFUSED, line=data.count(b"\n", 0, doctype_at) + 1)
    try:
        root, docinfo = parse(data)
    except CapError as exc:
        if any(form in data for form in DOCTYPE_FORMS):
            raise error(DTD_REFUSED) from None
        if isinstance(exc, error):
            raise
        raise error(exc.problem, line=exc.line, element=exc.element) from None
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise error(DTD_REFUSED)
    return root


def doctype_in_prolog(data: bytes) -> int:
    """Where a DOCTYPE starts before the root element, or -1 (a scan before any parsing)."""
    i = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    n = len(data)
    while i < n:
        if data[i] in b" \t\r\n":
            i += 1
        elif data.startswith(b"<?", i):
            end = data.find(b"?>", i + 2)
            if end < 0:
                return -1
            i = end + 2
        elif data.startswith(b"<!--", i):
            end = data.find(b"-->", i + 4)
            if end < 0:
                return -1
            i = end + 3
        else:
            return i if data.startswith(b"<!DOCTYPE", i) else -1
    return -1


def serialise(root: Node) -> bytes:
    """An element tree → UTF-8 XML bytes with an XML declaration, indented."""
    out = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    assert isinstance(out, bytes)
    return out


def validate(root: Node, ns: str) -> None:
    """Validate against the shipped schema of ``ns``; the first error becomes a CapError."""
    schema = _TOOLS.schema(ns)
    if schema.validate(root):
        return
    error = schema.error_log[0]
    raise _schema_error(root, str(error.message), error.line, str(error.path))


_ELEMENT = r"^Element '(?P<el>[^']+)'(?:, attribute '(?P<attr>[^']+)')?: "
_RULE_TEXT = {
    "enumeration": r"\[facet 'enumeration'\] The value '(?P<v>.*)' is not an element of the set "
    r"\{(?P<set>.*)\}\.$",
    "pattern": r"\[facet 'pattern'\] The value '(?P<v>.*)' is not accepted",
    "type": r"'(?P<v>.*)' is not a valid value of the (?:local )?atomic type"
    r"(?: '(?P<type>[^']+)')?",
    "unexpected": r"This element is not expected\."
    r"(?: Expected is (?:one of )?\( (?P<exp>.*) \)\.)?$",
    "missing": r"Missing child element\(s\)\. Expected is (?:one of )?\( (?P<exp>.*) \)\.$",
    "text": r"Character content other than whitespace",
    "attribute": r"The attribute '[^']+' is not allowed\.$",
}
_RULES = [(re.compile(_ELEMENT + text, re.S), kind) for kind, text in _RULE_TEXT.items()]
_CAP_DATETIME_HINT = (
    "is not a CAP dateTime (YYYY-MM-DDThh:mm:ss with a numeric offset such as +08:00; "
    "no 'Z', no fractional seconds)"
)


def _names(expected: str) -> list[str]:
    names = []
    for item in expected.split(", "):
        item = item.strip()
        names.append("a signature" if item == f"{{{XMLDSIG}}}*" else display(item))
    return names


def _schema_error(root: Node, message: str, line: int, path: str) -> CapError:
    message = message.strip()
    for pattern, kind in _RULES:
        m = pattern.match(message)
        if not m:
            continue
        el = display(m["el"])
        value = _clip(m["v"]) if "v" in m.groupdict() else ""
        if kind == "enumeration":
            choices = ", ".join(v.strip(" '") for v in m["set"].split(","))
            return CapError(f"'{value}' is not one of {choices}", line=line, element=el)
        if kind in ("pattern", "type") and el in DATETIME_ELEMENTS:
            return CapError(f"'{value}' {_CAP_DATETIME_HINT}", line=line, element=el)
        if kind == "pattern":
            return CapError(f"'{value}' does not have the required form", line=line, element=el)
        if kind == "type":
            kind_name = (m["type"] or "value").removeprefix("xs:")
            return CapError(f"'{value}' is not a valid {kind_name}", line=line, element=el)
        if kind == "unexpected":
            return _unexpected(root, path, el, _names(m["exp"]) if m["exp"] else [], line)
        if kind == "missing":
            return CapError(
                f"missing required element {_listing(_names(m['exp']))}",
                line=line,
                element=el,
            )
        if kind == "text":
            return CapError("text is not allowed here, only elements", line=line, element=el)
        return CapError(f"attribute '{m['attr']}' is not allowed", line=line, element=el)
    cleaned = message.replace(f"{{{CAP12}}}", "").replace(f"{{{CAP11}}}", "")
    return CapError(cleaned, line=line)


def _clip(value: str, limit: int = 80) -> str:
    """A value quoted in a message, cut short: messages travel into logs and answers."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _listing(names: list[str]) -> str:
    if len(names) == 1:
        return f"'{names[0]}'"
    return "(one of " + ", ".join(names) + ")"


def _unexpected(root: Node, path: str, el: str, expected: list[str], line: int) -> CapError:
    if not expected:
        return CapError("not allowed here (nothing may follow)", line=line, element=el)
    if el not in CAP_ELEMENTS:
        return CapError(f"not a CAP element; expected {_listing(expected)}", line=line, element=el)
    found = root.getroottree().xpath(path) if path else []
    later: set[str] = set()
    sibling = found[0] if found else None
    while sibling is not None:
        later.add(display(sibling.tag))
        sibling = sibling.getnext()
    if any(name in later for name in expected):
        return CapError(
            f"out of order: {_listing(expected)} must come before it", line=line, element=el
        )
    return CapError(
        f"missing required element {_listing(expected)} before '{el}'", line=line, element=el
    )
