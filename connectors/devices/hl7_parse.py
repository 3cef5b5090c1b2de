"""HL7 v2 lab results (ORU^R01 and friends) → :class:`~connectors.devices.model.LabMessage`.

Tokenising is left to the ``hl7`` library; what the library does not do is split by job: cleaning the text and
checking MSH-2 in :mod:`connectors.devices.hl7_text`, reading fields in :mod:`connectors.devices.hl7_reader`,
PID/OBX/NTE into typed values in :mod:`connectors.devices.hl7_segments`. This module walks a message's
segments and groups them into the patient, its orders (ORC/OBR) and their results, with precise errors.

Strictness, and why: a result value that cannot be read (``NM`` value ``abc``, an impossible date, an unknown
result status) makes the whole message fail with every issue listed, because a half-loaded panel looks
complete to a vet. Things that are merely informal (a prose reference range, an unknown abnormal flag) are
kept as text and reported in ``LabMessage.warnings``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from hl7.containers import Segment

from connectors.devices.hl7_reader import FieldReader
from connectors.devices.hl7_segments import person_name, read_note, read_observation, read_patient
from connectors.devices.hl7_text import check_msh, normalise_hl7, parse_tree, split_hl7_messages
from connectors.devices.model import (
    CodedValue,
    DeviceParseError,
    FieldIssue,
    LabMessage,
    Observation,
    Order,
    Patient,
)

__all__ = ["parse_hl7", "parse_hl7_batch"]


@dataclass
class _OrderBuilder:
    placer: str | None
    filler: str | None
    service: CodedValue | None = None
    observed_at: datetime | None = None
    status: str | None = None
    specimen_id: str | None = None
    observations: list[Observation] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    def freeze(self) -> Order:
        return Order(
            placer_order_number=self.placer,
            filler_order_number=self.filler,
            service=self.service,
            observed_at=self.observed_at,
            result_status=self.status,
            specimen_id=self.specimen_id,
            observations=tuple(self.observations),
            comments=tuple(self.comments),
        )


def parse_hl7(raw: bytes | str) -> LabMessage:
    """Parse exactly one HL7 v2 message. Raises :class:`DeviceParseError` listing every problem found."""
    text, decode_warnings = normalise_hl7(raw)
    chunks = split_hl7_messages(text) if text else []
    if len(chunks) != 1:
        if not chunks:
            raise DeviceParseError([FieldIssue("MSH", None, "empty input, expected an HL7 message")])
        raise DeviceParseError(
            [FieldIssue("MSH", None, f"expected one message, found {len(chunks)} (use parse_hl7_batch)")]
        )
    return _parse_one(chunks[0], decode_warnings)


def parse_hl7_batch(raw: bytes | str) -> tuple[LabMessage, ...]:
    """Parse a file drop holding one or more messages (optionally in FHS/BHS envelopes).

    All or nothing: if any message fails, the error names it (``message 2 of 3``) so the whole file goes to
    the inbox together and nothing is half-imported.
    """
    text, decode_warnings = normalise_hl7(raw)
    chunks = split_hl7_messages(text) if text else []
    if not chunks:
        raise DeviceParseError([FieldIssue("MSH", None, "empty input, expected an HL7 message")])
    messages: list[LabMessage] = []
    issues: list[FieldIssue] = []
    for number, chunk in enumerate(chunks, start=1):
        try:
            messages.append(_parse_one(chunk, decode_warnings))
        except DeviceParseError as exc:
            prefix = f"message {number} of {len(chunks)}: " if len(chunks) > 1 else ""
            issues.extend(FieldIssue(i.location, i.segment, prefix + i.message) for i in exc.issues)
    if issues:
        raise DeviceParseError(issues)
    return tuple(messages)


def _parse_one(text: str, decode_warnings: tuple[str, ...]) -> LabMessage:
    check_msh(text)
    try:
        message = parse_tree(text)
    except Exception as exc:  # the library raises assorted types on malformed input; report, don't crash
        raise DeviceParseError(
            [FieldIssue("MSH", 1, f"hl7 library could not split the message: {exc}")]
        ) from exc

    rd = FieldReader()
    rd.warnings.extend(decode_warnings)
    msh = message[0]
    sending_app = rd.get(msh, 1, 3) or rd.get(msh, 1, 3, 1, 2)
    sending_fac = rd.get(msh, 1, 4) or rd.get(msh, 1, 4, 1, 2)
    sent_at = rd.stamp(msh, 1, 7)
    msg_code, trigger = rd.get(msh, 1, 9, 1, 1), rd.get(msh, 1, 9, 1, 2)
    message_type = f"{msg_code}^{trigger}" if trigger else msg_code or None
    control_id = rd.get(msh, 1, 10) or None
    version = rd.get(msh, 1, 12) or None
    if not msg_code:
        rd.error("MSH-9", 1, "message type is empty (expected e.g. ORU^R01)")
    if control_id is None:
        rd.error("MSH-10", 1, "message control id is empty; it is required to acknowledge the message")

    patient_seg: tuple[Segment, int] | None = None
    owner: str | None = None
    message_comments: list[str] = []
    orders: list[_OrderBuilder] = []
    pending_orc: tuple[str | None, str | None] | None = None
    last_obs: tuple[_OrderBuilder, int] | None = None  # NTE after an OBX belongs to that OBX
    obx_comments: dict[tuple[int, int], list[str]] = {}

    for pos, seg in enumerate(message, start=1):
        sid = str(seg[0][0]) if len(seg) and len(seg[0]) else ""
        if pos > 1 and sid == "MSH":
            rd.error("MSH", pos, "a second MSH inside one message")
        elif sid == "PID":
            if patient_seg is not None:
                rd.error("PID", pos, "a second PID; one ORU message must carry one patient")
            patient_seg = (seg, pos)
            last_obs = None
        elif sid == "NK1" and owner is None:
            owner = person_name(rd, seg, pos, 2)
        elif sid == "GT1" and owner is None:
            owner = person_name(rd, seg, pos, 3)
        elif sid == "ORC":
            pending_orc = (rd.get(seg, pos, 2) or None, rd.get(seg, pos, 3) or None)
            last_obs = None
        elif sid == "OBR":
            orc_placer, orc_filler = pending_orc or (None, None)
            order = _OrderBuilder(
                placer=rd.get(seg, pos, 2) or orc_placer,
                filler=rd.get(seg, pos, 3) or orc_filler,
                service=rd.coded(seg, pos, 4),
                observed_at=rd.stamp(seg, pos, 7),
                status=rd.get(seg, pos, 25) or None,
            )
            orders.append(order)
            pending_orc = None
            last_obs = None
        elif sid == "OBX":
            if not orders:
                rd.warn("OBX", pos, "result without an OBR; grouped under an order with no number")
                orders.append(_OrderBuilder(placer=None, filler=None))
            order = orders[-1]
            obs = read_observation(rd, seg, pos, order.observed_at)
            if obs is not None:
                order.observations.append(obs)
                last_obs = (order, len(order.observations) - 1)
        elif sid == "NTE":
            note = read_note(rd, seg, pos)
            if not note:
                continue
            if last_obs is not None:
                obx_comments.setdefault((id(last_obs[0]), last_obs[1]), []).append(note)
            elif orders and pending_orc is None:
                orders[-1].comments.append(note)
            else:
                message_comments.append(note)
        elif sid == "SPM" and orders:
            orders[-1].specimen_id = rd.get(seg, pos, 2) or orders[-1].specimen_id
        elif sid == "" or not re.fullmatch(r"[A-Z][A-Z0-9]{2}", sid):
            rd.error(sid[:3] or "?", pos, f"'{sid[:20]}' is not a segment id (expected three capitals)")

    patient = read_patient(rd, *patient_seg, owner) if patient_seg else Patient(owner_name=owner)
    if rd.issues:
        raise DeviceParseError(rd.issues)

    frozen_orders = []
    for order in orders:
        observations = [
            _with_comments(obs, obx_comments.get((id(order), i), []))
            for i, obs in enumerate(order.observations)
        ]
        order.observations = observations
        frozen_orders.append(order.freeze())
    return LabMessage(
        source_format="hl7v2",
        message_control_id=control_id,
        message_type=message_type,
        sending_application=sending_app or None,
        sending_facility=sending_fac or None,
        sent_at=sent_at,
        version=version,
        patient=patient,
        orders=tuple(frozen_orders),
        comments=tuple(message_comments),
        warnings=tuple(rd.warnings),
        receiving_application=rd.get(msh, 1, 5) or None,
        receiving_facility=rd.get(msh, 1, 6) or None,
    )


def _with_comments(obs: Observation, notes: list[str]) -> Observation:
    if not notes:
        return obs
    return replace(obs, comments=obs.comments + tuple(notes))
