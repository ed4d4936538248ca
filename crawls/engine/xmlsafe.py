"""Parse XML from the outside world without letting it reach further than its own bytes.

lxml's parser is set never to substitute entities, load a DTD or touch the network, and to keep
libxml2's limits on depth and text size (no ``huge_tree``). A document that declares entities or
a DTD of its own (the billion laughs, an external entity naming file:///etc/passwd, a DTD
over http) is refused with ``XmlError`` before anything is expanded: APIs do not need them.
Bytes in, element out; the declared encoding is honoured, and EUC-KR (as Korean government
APIs declare it) is read as CP949, its superset, like browsers do. Pure Python (no Django).
"""

from __future__ import annotations

import codecs
import re

from lxml import etree  # type: ignore[import-untyped]

_DECLARATION = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_KOREAN = frozenset(
    {
        "euc-kr", "euc_kr", "euckr", "cp949", "ms949", "uhc", "windows-949", "x-windows-949",
        "ks_c_5601-1987", "ks_c_5601-1989", "ksc_5601", "ksc5601", "csksc56011987", "iso-ir-149",
        "korean",
    }
)  # fmt: skip
# "<!ENTITY" and "<!DOCTYPE" in the encodings a document may arrive in, looked for before parsing.
_NEEDLES = tuple(
    word.encode(codec)
    for word in ("<!ENTITY", "<!DOCTYPE")
    for codec in ("ascii", "utf-16-le", "utf-16-be")
)


class XmlError(ValueError):
    """Not XML, or XML that declares what a safe reader does not expand."""


def _parser(encoding: str | None = None) -> etree.XMLParser:
    # A parser per document: lxml parsers are not to be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
        encoding=encoding,
    )


def parse(data: bytes) -> etree._Element:
    """The root element of an XML document; XmlError says why it cannot be read safely."""
    if not data.strip():
        raise XmlError("not XML: the body is empty")
    if any(needle in data for needle in _NEEDLES) and _declares(data):
        raise XmlError(
            "refused XML with a DOCTYPE that declares entities or names an external DTD "
            "(entity expansion and external resources are not read)"
        )
    encoding = None
    match = _DECLARATION.match(data[:200].lstrip(codecs.BOM_UTF8))
    if match is not None and match.group(1).decode("ascii").lower() in _KOREAN:
        data = data.decode("cp949", "replace").encode("utf-8")
        encoding = "utf-8"  # overrides the declaration, which now lies
    try:
        root = etree.fromstring(data, _parser(encoding))
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"not XML: {exc}") from None
    except (LookupError, ValueError) as exc:  # an encoding libxml2 does not know
        raise XmlError(f"not XML: {exc}") from None
    if root is None:
        raise XmlError("not XML: no root element")
    docinfo = root.getroottree().docinfo
    dtd = docinfo.internalDTD
    if docinfo.system_url or docinfo.public_id or (dtd is not None and any(dtd.iterentities())):
        # Nothing was expanded (resolve_entities=False); the document is refused all the same.
        raise XmlError(
            "refused XML with a DOCTYPE that declares entities or names an external DTD "
            "(entity expansion and external resources are not read)"
        )
    return root


def _declares(data: bytes) -> bool:
    """Whether a DOCTYPE before the root declares entities or an external DTD (bytes only,
    so a bomb is refused before libxml2 sees it)."""
    text = data[:65536].decode("utf-8", "ignore") if b"\x00" not in data[:64] else ""
    if not text:
        for codec in ("utf-16", "utf-16-le", "utf-16-be"):
            try:
                text = data[:131072].decode(codec)
                break
            except UnicodeDecodeError:
                continue
    doctype = re.search(r"<!DOCTYPE(.*?)(?:\]\s*>|>)", text, re.DOTALL)
    if doctype is None:
        return False  # no DOCTYPE, no declarations (the parse's own check stays behind this one)
    body = doctype.group(1)
    return "<!ENTITY" in body or bool(re.search(r"\b(?:SYSTEM|PUBLIC)\b", body))
