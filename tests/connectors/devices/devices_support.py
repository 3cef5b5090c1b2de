"""Set-up for the device → warehouse tests: a practice with known patients, owners and lab orders."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import hl7
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.devices.ingest import ingest_bytes
from tests.conftest import MASTER_KEY, Database
from warehouse.ingest.devices.inputs import RecordResult
from warehouse.kernel.tenancy import AccessContext
from warehouse.schema.clients import Client, ClientPatient, Patient
from warehouse.schema.clinical import LabObservation, LabOrder
from warehouse.schema.ingestion import DeviceMessage
from warehouse.tenants.admin import add_franchise, add_practice

# Real messages and files from other projects' test suites, kept in the repository (origins and licences:
# samples/README.md).
SAMPLES = Path(__file__).resolve().parent / "samples"
CHIP = "528140000123456"


def sample_files() -> list[Path]:
    """Every sample file (hl7/, astm/, dicom/), sorted; not the README or the licences."""
    return sorted(
        p for folder in ("hl7", "astm", "dicom") for p in (SAMPLES / folder).iterdir() if p.is_file()
    )


@dataclass
class Clinic:
    practice_id: int
    patients: dict[str, int] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=dict)

    @property
    def context(self) -> AccessContext:
        return AccessContext.for_practices([self.practice_id])


def add_patient(
    session: Session,
    practice_id: int,
    name: str,
    owner: str,
    chip: str | None = None,
    animana_id: str | None = None,
) -> int:
    client = Client(practice_id=practice_id, last_name=owner, initials="A.")
    patient = Patient(
        practice_id=practice_id, name=name, species="dog", microchip=chip, animana_id=animana_id
    )
    session.add_all([client, patient])
    session.flush()
    session.add(ClientPatient(practice_id=practice_id, client_id=client.id, patient_id=patient.id))
    session.flush()
    return patient.id


def make_clinic(
    db: Database, code: str = "p1", *, orders: tuple[str, ...] = (), franchise: str | None = None
) -> Clinic:
    """A practice with Bello (chip CHIP, owner de Vries, Animana id A-1001) and Minoes (owner Jansen), and a
    lab order for Bello per accession in ``orders``."""
    with db.system() as session:
        franchise_row = add_franchise(session, code=franchise or f"f-{code}", name=f"Franchise {code}")
        practice = add_practice(session, franchise_id=franchise_row.id, code=code, name=f"Praktijk {code}",
                                master_key=MASTER_KEY)  # fmt: skip
        clinic = Clinic(practice.id)
        clinic.patients["bello"] = add_patient(session, practice.id, "Bello", "de Vries", CHIP, "A-1001")
        clinic.patients["minoes"] = add_patient(session, practice.id, "Minoes", "Jansen", None, "A-2002")
        for accession in orders:
            order = LabOrder(
                practice_id=practice.id, patient_id=clinic.patients["bello"], accession_number=accession
            )
            session.add(order)
            session.flush()
            clinic.orders[accession] = order.id
    return clinic


def ingest(
    db: Database, clinic: Clinic, raw: bytes, source: str = "test", filename: str | None = None
) -> RecordResult:
    with db.as_app(clinic.context) as session:
        return ingest_bytes(session, clinic.practice_id, raw, source, filename, master_key=MASTER_KEY)


def messages(db: Database, clinic: Clinic) -> list[DeviceMessage]:
    with db.as_app(clinic.context) as session:
        return list(session.scalars(select(DeviceMessage).order_by(DeviceMessage.id)))


def observations(db: Database, clinic: Clinic, **where: object) -> list[LabObservation]:
    with db.as_app(clinic.context) as session:
        query = select(LabObservation).order_by(LabObservation.id)
        for column, value in where.items():
            query = query.where(getattr(LabObservation, column) == value)
        return list(session.scalars(query))


def vet_oru(
    control_id: str = "HM5-0001",
    *,
    chip: str = CHIP,
    owner: str = "de Vries^Anna",
    accession: str = "ACC-2024-0042",
    status: str = "F",
    wbc: str = "18.2",
    sender: str = "VetScan HM5",
    obx_count: int = 0,
    when: dt.datetime | None = None,
) -> bytes:
    """A veterinary ORU^R01 (chip in PID-3, owner in NK1); ``obx_count`` > 0 gives a CBC of that many results."""
    stamp = (when or dt.datetime(2024, 3, 14, 10, 15)).strftime("%Y%m%d%H%M%S")
    segments = [
        f"MSH|^~\\&|{sender}|Kliniek Zuid|VetConnect|Praktijk|{stamp}+0100||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        f"PID|1||{chip}^^^ISO^MC~A-1001^^^PRAKTIJK^PI||de Vries^Bello||20190301|M",
        f"NK1|1|{owner}|OWN^Owner^HL70063",
        f"ORC|RE|PL-77|{accession}",
        f"OBR|1|PL-77|{accession}|CBC^Complete blood count^L|||{stamp}+0100|||||||||||||||||{status}",
    ]
    if obx_count:
        segments += [
            f"OBX|{n}|NM|T{n:02d}^Test {n}^L||{n}.5|10*9/L|1.0-{n + 10}.0|N|||{status}"
            for n in range(1, obx_count + 1)
        ]
    else:
        segments += [
            f"OBX|1|NM|WBC^White blood cells^L||{wbc}|10*9/L^^UCUM|6.0-17.0|H|||{status}",
            f"OBX|2|NM|HCT^Haematocrit^L||0.45|L/L|0.37-0.55|N|||{status}",
        ]
    return "\r".join(segments).encode()


def ack_fields(ack: bytes) -> tuple[str, str, str]:
    """MSA-1 (AA/AE/AR), MSA-2 (the acknowledged control id) and MSA-3 (the reason, unescaped) of an ACK."""
    parsed = hl7.parse(ack.decode())
    seg = parsed.segment("MSA")
    return str(seg(1)), str(seg(2)), parsed.unescape(str(seg(3))) if len(seg) > 3 else ""


def msa(ack: bytes) -> tuple[str, str]:
    """(acknowledgement code, control id) of an ACK."""
    return ack_fields(ack)[:2]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
