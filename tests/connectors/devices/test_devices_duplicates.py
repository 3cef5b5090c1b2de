"""Control ids are reused by analysers: two patients' results with one control id both reach their records, and
only a message with the same content is a duplicate (with a trace) - over real TCP MLLP and through the import
CLI, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from connectors.devices.ingest import DeviceStore
from connectors.devices.mllp import (
    BackgroundMLLPServer,
    MLLPClient,
    MLLPConfig,
    hl7_handler,
    start_in_background,
)
from tests.conftest import MASTER_KEY
from tests.connectors.devices.devices_support import (
    CHIP,
    SAMPLES,
    Clinic,
    add_patient,
    make_clinic,
    messages,
    msa,
    observations,
)
from vetconnect.cli import app
from vetconnect.settings import get_settings

pytestmark = pytest.mark.xdist_group("devices-db")
TOMMY_CHIP = "528140000654321"


def result_for(
    patient: str, *, control_id: str = "1", sent: str = "20240314101500", wbc: str = "18.2"
) -> bytes:
    """An ORU^R01 from one analyser ("VetScan HM5", which numbers every message 1) for Bello (chip, owner de
    Vries), Minoes (no chip: patient id A-2002 + owner Jansen) or Tommy (chip, owner Bakker)."""
    pid, owner, accession = {
        "bello": (f"{CHIP}^^^ISO^MC~A-1001^^^PRAKTIJK^PI||de Vries^Bello", "de Vries^Anna", "ACC-B-1"),
        "minoes": ("A-2002^^^PRAKTIJK^PI||Jansen^Minoes", "Jansen^Piet", "ACC-M-1"),
        "tommy": (f"{TOMMY_CHIP}^^^ISO^MC||Bakker^Tommy", "Bakker^Els", "ACC-T-1"),
    }[patient]
    return "\r".join(
        [
            f"MSH|^~\\&|VetScan HM5|Kliniek Zuid|VetConnect|Praktijk|{sent}+0100||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
            f"PID|1||{pid}||20190301|M",
            f"NK1|1|{owner}|OWN^Owner^HL70063",
            f"ORC|RE|PL-77|{accession}",
            f"OBR|1|PL-77|{accession}|CBC^Complete blood count^L|||20240314101000+0100|||||||||||||||||F",
            f"OBX|1|NM|WBC^White blood cells^L||{wbc}|10*9/L^^UCUM|6.0-17.0|H|||F",
            "OBX|2|NM|HCT^Haematocrit^L||0.45|L/L|0.37-0.55|N|||F",
        ]
    ).encode()


def clinic_with_tommy(db) -> Clinic:
    clinic = make_clinic(db)
    with db.system() as session:
        clinic.patients["tommy"] = add_patient(session, clinic.practice_id, "Tommy", "Bakker", TOMMY_CHIP)
    return clinic


def by_patient(db, clinic: Clinic) -> dict[int, list[str]]:
    rows: dict[int, list[str]] = {}
    for obs in observations(db, clinic):
        rows.setdefault(obs.patient_id, []).append(obs.code)
    return rows


# --- MLLP over real TCP ----------------------------------------------------------------------------------------


@pytest.fixture
def feed(fresh_db) -> Iterator[tuple[BackgroundMLLPServer, Clinic]]:
    clinic = clinic_with_tommy(fresh_db)
    store = DeviceStore(fresh_db.app_engine, clinic.practice_id, MASTER_KEY)
    server = start_in_background(hl7_handler(store.store), on_garbage=store.on_garbage,
                                 config=MLLPConfig(idle_timeout=10))  # fmt: skip
    yield server, clinic
    server.stop()


async def _send(server: BackgroundMLLPServer, payloads: list[bytes]) -> list[bytes]:
    async with await MLLPClient.connect(server.host, server.port) as client:
        return [await client.send(p) for p in payloads]


def test_three_patients_results_with_one_control_id_over_mllp_all_reach_their_records(fresh_db, feed):
    server, clinic = feed
    acks = asyncio.run(_send(server, [result_for(p) for p in ("bello", "minoes", "tommy")]))
    assert [msa(a) for a in acks] == [("AA", "1")] * 3
    stored = messages(fresh_db, clinic)
    assert [m.status for m in stored] == ["ingested"] * 3
    # the reuse is noted: each later message points at the first one with that control id
    assert [m.same_control_id_as for m in stored] == [None, stored[0].id, stored[0].id]
    assert by_patient(fresh_db, clinic) == {
        clinic.patients[p]: ["WBC", "HCT"] for p in ("bello", "minoes", "tommy")
    }


def test_one_control_id_within_one_batch_is_loaded_for_each_patient(fresh_db, feed):
    """Two connections at once: the listener stores both in one batch (the set-based path for chip matches)."""
    server, clinic = feed

    async def main() -> list[list[bytes]]:
        return await asyncio.gather(*(_send(server, [result_for(p)]) for p in ("bello", "tommy")))

    acks = [a for per in asyncio.run(main()) for a in per]
    assert [msa(a) for a in acks] == [("AA", "1")] * 2
    first, second = messages(fresh_db, clinic)
    assert (first.status, second.status) == ("ingested", "ingested")
    assert (first.same_control_id_as, second.same_control_id_as) == (None, first.id)
    assert sorted(by_patient(fresh_db, clinic)) == sorted(
        [clinic.patients["bello"], clinic.patients["tommy"]]
    )


def test_a_resend_over_mllp_is_acked_and_kept_as_a_duplicate_not_loaded_again(fresh_db, feed):
    server, clinic = feed
    original = result_for("bello", control_id="HM5-7")
    restamped = result_for("bello", control_id="HM5-7", sent="20240314113000")
    acks = asyncio.run(_send(server, [original, original, restamped]))
    # AA for every copy: the analyser did its job and must not send them again
    assert [msa(a) for a in acks] == [("AA", "HM5-7")] * 3
    first, *copies = messages(fresh_db, clinic)
    assert first.status == "ingested" and first.observation_count == 2
    # the trace: each copy is kept raw, marked duplicate of the original, with its sender and control id
    assert [(m.status, m.duplicate_of, m.control_id, m.raw) for m in copies] == [
        ("duplicate", first.id, "HM5-7", original),
        ("duplicate", first.id, "HM5-7", restamped),
    ]
    assert len(observations(fresh_db, clinic)) == 2
    # another result under the same control id afterwards is still loaded
    (ack,) = asyncio.run(_send(server, [result_for("bello", control_id="HM5-7", wbc="9.1")]))
    assert msa(ack) == ("AA", "HM5-7")
    latest = messages(fresh_db, clinic)[-1]
    assert (latest.status, latest.same_control_id_as) == ("ingested", first.id)
    assert [o.value_text for o in observations(fresh_db, clinic, code="WBC")] == ["18.2", "9.1"]


# --- files through `vetconnect devices import` ----------------------------------------------------------------


@pytest.fixture
def cli_env(fresh_db, monkeypatch, tmp_path):
    for name, value in {
        "DATABASE_URL": fresh_db.admin_url,
        "VETCONNECT_HOME": str(tmp_path / "home"),
        "VETCONNECT_MASTER_KEY": base64.b64encode(MASTER_KEY).decode(),
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield clinic_with_tommy(fresh_db), tmp_path
    get_settings.cache_clear()


def test_import_loads_two_patients_with_one_control_id_and_says_so(fresh_db, cli_env):
    clinic, tmp = cli_env
    files = []
    for name, raw in [("bello", result_for("bello")), ("minoes", result_for("minoes")),
                      ("bello-again", result_for("bello", sent="20240315080000"))]:  # fmt: skip
        files.append(tmp / f"{name}.hl7")
        files[-1].write_bytes(raw)
    result = CliRunner().invoke(app, ["devices", "import", *map(str, files), "--practice", "p1"])
    assert result.exit_code == 0, result.output
    first_id = messages(fresh_db, clinic)[0].id
    assert result.output.strip().splitlines() == [
        f"{files[0]}: ingested 2 observations",
        f"{files[1]}: ingested 2 observations (a new message: its control id was used before by message "
        f"{first_id}, with other content)",
        f"{files[2]}: duplicate of message {first_id}: same content (not loaded again)",
    ]
    assert by_patient(fresh_db, clinic) == {clinic.patients[p]: ["WBC", "HCT"] for p in ("bello", "minoes")}


def test_import_of_a_real_sample_restamped_is_a_duplicate_but_another_patient_under_its_control_id_is_not(
    fresh_db, cli_env
):
    clinic, tmp = cli_env
    sample_path = SAMPLES / "hl7/lri_nist_cbc_typical.hl7"
    sample = sample_path.read_bytes()
    resent = tmp / "resent.hl7"  # restamped MSH-7, CR LF line ends
    resent.write_bytes(
        sample.replace(b"|20110531140551-0500|", b"|20260301090000+0100|").replace(b"\r", b"\r\n")
    )
    other_patient = tmp / "other.hl7"  # the sample's sender, control id and order number, another patient
    other_patient.write_bytes(
        sample.replace(b"PATID1234^^^NIST MPI^MR||Jones^William^A", b"PATID5678^^^NIST MPI^MR||Smit^Jan")
    )
    paths = [sample_path, resent, other_patient]
    result = CliRunner().invoke(app, ["devices", "import", *map(str, paths), "--practice", "p1"])
    lines = result.output.strip().splitlines()
    stored = messages(fresh_db, clinic)
    assert [m.status for m in stored] == ["inbox", "duplicate", "inbox"]  # nobody in this practice is PATID…
    assert lines[1] == f"{resent}: duplicate of message {stored[0].id}: same content (not loaded again)"
    assert lines[2].startswith(f"{other_patient}: inbox: no_patient_match: ")
    assert lines[2].endswith(
        f"(a new message: its control id was used before by message {stored[0].id}, with other content)"
    )
    assert stored[2].same_control_id_as == stored[0].id
