"""HL7 v2 message text, before any field is read: cleaning what devices put around a message, splitting a file
or batch into messages, checking MSH-1/MSH-2, and tokenising into the ``hl7`` library's tree.

Tokenising is left to the ``hl7`` library (``hl7.parse``, which reads MSH-1/MSH-2 for the encoding characters
and handles escape sequences); :func:`parse_tree` only saves its per-node bookkeeping. Both the parser
(:mod:`connectors.devices.hl7_parse`) and the ACK builder (:mod:`connectors.devices.hl7_acks`) start here; it
holds only what acknowledging a message needs, so the MLLP listener does not import the result parser.
"""

from __future__ import annotations

import re

import hl7
from hl7.containers import Factory
from hl7.parser import _ParsePlan, _split, create_parse_plan

from connectors.devices.model import DeviceParseError, FieldIssue

__all__ = ["check_msh", "normalise_hl7", "parse_tree", "split_hl7_messages"]

_CHARSETS = {"8859/1": "latin-1", "8859/15": "iso8859-15", "UNICODE UTF-8": "utf-8", "ASCII": "ascii"}


def normalise_hl7(raw: bytes | str) -> tuple[str, tuple[str, ...]]:
    """Turn what arrived (bytes or text) into the ``\\r``-separated text ``hl7.parse`` expects.

    Strips MLLP framing, a UTF-8 BOM and blank lines; accepts ``\\r``, ``\\n`` and ``\\r\\n`` as segment ends
    (raw newlines cannot occur inside a field - HL7 escapes them as ``\\.br\\``). Decodes UTF-8, then the
    MSH-18 character set, then latin-1 (with a warning), because old analysers still send 8859/1.
    """
    warnings: list[str] = []
    if isinstance(raw, bytes):
        text = _decode(raw.strip(b"\x0b\x1c\r\n\t \x00"), warnings)
    else:
        text = raw
    text = text.lstrip("\ufeff\x0b \t\r\n").rstrip("\x1c \t\r\n\x00")
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    segments = [seg for seg in text.split("\r") if seg.strip()]
    return "\r".join(segments), tuple(warnings)


def _decode(data: bytes, warnings: list[str]) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = _declared_charset(data)
    if declared is not None:
        try:
            return data.decode(declared)
        except (UnicodeDecodeError, LookupError):
            warnings.append(f"MSH-18: bytes do not match the declared character set {declared}")
    warnings.append("message is not valid UTF-8; decoded as ISO 8859-1")
    return data.decode("latin-1")


def _declared_charset(data: bytes) -> str | None:
    header = data.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("ascii", "replace")
    if len(header) < 4 or not header.startswith("MSH"):
        return None
    fields = header.split(header[3])
    if len(fields) <= 17:
        return None
    return _CHARSETS.get(fields[17].split("~")[0].strip().upper())


def split_hl7_messages(text: str) -> list[str]:
    """Split normalised text holding one or more messages (a file drop or an FHS/BHS batch) at each MSH.

    Batch/file envelope segments are dropped; anything before the first MSH is returned as its own chunk so
    the caller reports it instead of silently losing it.
    """
    chunks: list[list[str]] = []
    for seg in text.split("\r"):
        if seg[:3] in ("FHS", "BHS", "BTS", "FTS"):
            continue
        if seg.startswith("MSH") or not chunks:
            chunks.append([seg])
        else:
            chunks[-1].append(seg)
    return ["\r".join(chunk) for chunk in chunks if chunk]


def check_msh(text: str) -> None:
    """Raise :class:`DeviceParseError` unless ``text`` starts with an MSH whose MSH-1/MSH-2 the library can use.

    ``hl7.parse`` trips over a bad MSH-2 with an unhelpful error; this says which field is wrong and why.
    """
    if not text.startswith("MSH"):
        found = text[:20].encode("unicode_escape").decode("ascii")
        raise DeviceParseError(
            [FieldIssue("MSH", 1, f"expected the message to start with MSH, found '{found}'")]
        )
    if len(text) < 8:
        raise DeviceParseError([FieldIssue("MSH-2", 1, "MSH segment too short for its encoding characters")])
    sep = text[3]
    end = text.find(sep, 4)
    encoding = text[4:end] if end != -1 else text[4:]
    problems = []
    if sep.isalnum() or sep.isspace():
        problems.append(f"MSH-1 field separator {sep!r} must be a punctuation character")
    if end == -1 or not 2 <= len(encoding) <= 5:
        problems.append(f"MSH-2 must hold 4 encoding characters (e.g. ^~\\&), found {encoding[:8]!r}")
    elif len(set(encoding + sep)) != len(encoding) + 1 or any(c.isalnum() or c.isspace() for c in encoding):
        problems.append(f"MSH-2 encoding characters {encoding!r} must be distinct punctuation, not {sep!r}")
    if problems:
        raise DeviceParseError([FieldIssue(p[:5], 1, p) for p in problems])


class _Plan(_ParsePlan):
    """``hl7``'s own parse plan, with what it recomputes at every node of the tree computed once per level.

    ``hl7.parse`` runs the library's tokenizer (``hl7.parser._split``) over a ``_ParsePlan`` that builds a new
    plan object for the next level, re-derives the separator list and calls each container's constructor chain
    (three ``__init__`` levels with asserts) at each of the ~400 nodes of a 20-result panel; that bookkeeping,
    not the splitting, was most of its cost (~1 ms per panel). Same tokenizer, same tree: the next level is
    memoised and nodes are built as the library's own classes with the attributes their constructors set
    (``test_parse_tree_is_the_librarys`` holds the result equal, type for type, to ``hl7.parse``).
    """

    def __init__(self, separator: str, separators: str, containers: list, esc: str, factory: type) -> None:
        super().__init__(separator, separators, containers, esc, factory)
        self._child: _Plan | None = None
        # ``applies`` (does the text hold this level's separator or a deeper one?) as one regex search.
        level_separators = separators[separators.find(separator) :]
        self.applies = re.compile(f"[{re.escape(level_separators)}]").search  # type: ignore[method-assign]
        self._cls = containers[0]
        # What Container.__init__ would set: the separator this level's nodes are joined with, and the rest.
        self._attributes = {
            "separator": separators[len(separators) - len(containers)],
            "esc": esc,
            "separators": separators,
            "factory": Factory,
        }

    def next(self) -> _Plan | None:
        if self._child is None and len(self.containers) > 1:
            self._child = super().next()
        return self._child

    def container(self, data: list) -> list:
        node = self._cls.__new__(self._cls)
        list.__init__(node, data)
        node.__dict__.update(self._attributes)
        return node


def parse_tree(text: str) -> hl7.Message:
    """``hl7.parse(text)`` - the library's tokenizer and tree - without its per-node plan bookkeeping."""
    text = text.strip()
    plan = create_parse_plan(text)
    return _split(text, _Plan(plan.separator, plan.separators, plan.containers, plan.esc, plan.factory))
