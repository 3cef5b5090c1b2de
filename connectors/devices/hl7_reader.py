"""Reading fields out of the ``hl7`` library's tree of one message, recording every problem instead of raising on
the first one (see :class:`FieldReader`)."""

from __future__ import annotations

from datetime import datetime

from hl7.containers import Component, Repetition, Segment
from hl7.util import unescape

from connectors.devices.model import CodedValue, FieldIssue
from connectors.devices.values import parse_timestamp

__all__ = ["FieldReader"]


_item = list.__getitem__  # hl7 containers are lists; this skips their slice-aware __getitem__


def _leaf(field: list, r: int, c: int, s: int) -> str:
    """``field``'s repetition ``r``, component ``c``, sub-component ``s`` (1-based), following the compatibility
    rules of ``hl7.Segment.extract_field``: a tree deeper than the path follows first children, a tree that
    ends early answers only if the rest of the path is 1; an absent part raises IndexError."""
    rep = _item(field, r - 1)
    if not isinstance(rep, Repetition):
        if c == 1 and s == 1:
            return rep
        raise IndexError("field reaches a leaf before the path ends")
    if c > len(rep):
        if s == 1:
            return ""
        raise IndexError("component not present")
    component = _item(rep, c - 1)
    if not isinstance(component, Component):
        if s == 1:
            return component
        raise IndexError("field reaches a leaf before the path ends")
    return _item(component, s - 1) if s <= len(component) else ""


class FieldReader:
    """Field access on one parsed message that records issues instead of raising on the first one."""

    def __init__(self) -> None:
        self.issues: list[FieldIssue] = []
        self.warnings: list[str] = []

    def error(self, location: str, segment: int | None, message: str) -> None:
        self.issues.append(FieldIssue(location, segment, message))

    def warn(self, location: str, segment: int | None, message: str) -> None:
        self.warnings.append(str(FieldIssue(location, segment, message)))

    def get(self, seg: Segment, pos: int, f: int, r: int = 1, c: int = 1, s: int = 1) -> str:
        # Segment.extract_field's rules, walking the tree the library built with plain list indexing: the
        # containers' own __getitem__/__call__ and the Accessor it builds per call cost more than the parse
        # itself on a 20-result panel. Same answers; the escape handling is still the library's unescape.
        if f >= len(seg):
            return ""  # a non-present optional field
        try:
            value = _leaf(_item(seg, f), r, c, s)
        except IndexError:
            return ""  # deeper than the sender went: the component is simply absent
        return self._finish(seg, pos, f, value) if value else ""

    def parts(self, seg: Segment, pos: int, f: int, count: int, r: int = 1) -> list[str]:
        """``[get(seg, pos, f, r, c) for c in 1..count]`` in one walk: a coded value, a unit, an SN value."""
        if f >= len(seg):
            return [""] * count
        field = _item(seg, f)
        if r > len(field):
            return [""] * count
        rep = _item(field, r - 1)
        if not isinstance(rep, Repetition):
            values = [rep] + [""] * (count - 1)  # a plain value is component 1; the rest is absent
        else:
            values = []
            for c in range(min(count, len(rep))):
                component = _item(rep, c)
                if isinstance(component, Component):
                    component = _item(component, 0) if component else ""
                values.append(component)
            values += [""] * (count - len(values))
        return [self._finish(seg, pos, f, v) if v else "" for v in values]

    def _finish(self, seg: Segment, pos: int, f: int, value: str) -> str:
        if f <= 2 and _item(_item(seg, 0), 0) == "MSH":
            return value.strip()  # MSH-1/MSH-2 are the separators themselves, never unescaped
        if seg.esc in value:
            try:
                value = unescape(seg, value)
            except (ValueError, TypeError) as exc:
                # hl7.unescape raises on malformed escapes such as \.spX\ - report the field, keep going.
                self.error(f"{_item(_item(seg, 0), 0)}-{f}", pos, f"invalid escape sequence ({exc})")
                return ""
        return str(value).strip()

    def repetitions(self, seg: Segment, f: int) -> int:
        return len(_item(seg, f)) if f < len(seg) else 0

    def coded(self, seg: Segment, pos: int, f: int, r: int = 1) -> CodedValue | None:
        code, text, system, *_, original = self.parts(seg, pos, f, 9, r)  # CWE-9 original text
        if not (code or text or original):
            return None
        return CodedValue(code or None, text or original or None, system or None)

    def stamp(self, seg: Segment, pos: int, f: int) -> datetime | None:
        value = self.get(seg, pos, f)
        try:
            return parse_timestamp(value)
        except ValueError as exc:
            self.error(f"{seg[0][0]}-{f}", pos, str(exc))
            return None
