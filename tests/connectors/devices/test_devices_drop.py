"""Drop-folder imports are idempotent: a file without a control id (the Phadia ASTM sample transcript) whose
import stopped between its commit and the move is recognised by its content when picked up again."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.devices.drop import process_drop_file
from tests.conftest import MASTER_KEY
from tests.connectors.devices.devices_support import SAMPLES, make_clinic, messages, observations

pytestmark = pytest.mark.xdist_group("devices-db")

ASTM = "astm/phadia_immunocap_lis2_sample.astm.txt"


def test_a_file_without_control_id_stored_but_not_moved_is_a_duplicate_the_second_time(
    fresh_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    clinic = make_clinic(fresh_db, orders=("B7650020",))
    folder = tmp_path / "drop" / "p1"
    folder.mkdir(parents=True)
    dropped = folder / "phadia.astm"
    dropped.write_bytes((SAMPLES / ASTM).read_bytes())

    real_replace = Path.replace

    def crash(self: Path, target: Path) -> Path:  # the process stops right after the commit
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        process_drop_file(
            fresh_db.app_engine, clinic.practice_id, dropped, practice_code="p1", master_key=MASTER_KEY
        )
    monkeypatch.setattr(Path, "replace", real_replace)
    assert dropped.exists()
    (first,) = messages(fresh_db, clinic)
    assert (first.status, first.control_id, first.observation_count) == ("ingested", None, 3)

    again = process_drop_file(fresh_db.app_engine, clinic.practice_id, dropped, practice_code="p1",
                              master_key=MASTER_KEY)  # fmt: skip
    assert (again.record.status, again.record.duplicate_of) == ("duplicate", first.id)
    assert again.moved_to.parent.name == "processed" and not dropped.exists()
    assert [m.status for m in messages(fresh_db, clinic)] == ["ingested", "duplicate"]
    assert len(observations(fresh_db, clinic)) == 3  # loaded once
