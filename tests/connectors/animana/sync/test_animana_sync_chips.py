"""Animana lets two animals of a practice share a microchip; the warehouse holds a chip once per practice
(``uq_patient_microchip``). The sync keeps every animal, the chip on one, and notes it on the others."""

from __future__ import annotations

from sqlalchemy import text

from connectors.animana.sync.practice import PracticeResult
from connectors.animana.sync.service import sync_all
from tests.animana_sync_support import MASTER_KEY, SyncWorld

PRACTICE = 1001
NOTES = (
    "SELECT external_id, reason FROM ingest_quarantine WHERE practice_id = :pid AND resource = 'animals' "
    "AND resolved_at IS NOT NULL AND reason LIKE '%also on%' ORDER BY id"
)


def _sync(world: SyncWorld) -> PracticeResult:
    with world.client() as client:
        return sync_all(world.db.app_engine, client, world.practices[:1], master_key=MASTER_KEY)[0]


def _run_status(world: SyncWorld, result: PracticeResult) -> tuple[str, str | None]:
    with world.db.system() as session:
        row = session.execute(
            text("SELECT status, error FROM sync_run WHERE id = :run"), {"run": result.run_id}
        ).one()
    return row.status, row.error


def _patients(world: SyncWorld, animana_ids: list[int]) -> dict[str, tuple[str, str | None]]:
    """{animana id: (name, microchip)} of the practice's live patients."""
    with world.db.system() as session:
        rows = session.execute(
            text(
                "SELECT animana_id, name, microchip FROM patient WHERE practice_id = :pid "
                "AND animana_id = ANY(:ids) AND deleted_at IS NULL"
            ),
            {"pid": world.practices[0].practice_id, "ids": [str(i) for i in animana_ids]},
        ).all()
    return {r.animana_id: (r.name, r.microchip) for r in rows}


def _notes(world: SyncWorld) -> list[tuple[str, str]]:
    with world.db.system() as session:
        rows = session.execute(text(NOTES), {"pid": world.practices[0].practice_id}).all()
    return [(r.external_id, r.reason) for r in rows]


def _chipped_animals(world: SyncWorld) -> list[tuple[int, str, str]]:
    """(Animana id, name, chip) of the practice's chipped patients, lowest id first."""
    with world.db.system() as session:
        rows = session.execute(
            text(
                "SELECT animana_id::bigint AS aid, name, microchip FROM patient WHERE practice_id = :pid "
                "AND animana_id IS NOT NULL AND microchip IS NOT NULL AND deleted_at IS NULL ORDER BY 1"
            ),
            {"pid": world.practices[0].practice_id},
        ).all()
    return [(r.aid, r.name, r.microchip) for r in rows]


def test_an_animal_given_a_chip_another_animal_here_has_loads_without_it_and_is_noted(synced_world):
    world = synced_world
    chipped = _chipped_animals(world)
    # the later animal takes the chip of the earlier one: the one already holding it here keeps it
    (holder, holder_name, chip), (taker, _, _) = chipped[-1], chipped[0]
    world.sim.edit(PRACTICE, "animals", taker, {"chip_number": chip})

    result = _sync(world)

    assert _run_status(world, result) == ("succeeded", None)
    assert result.counts["animals"].quarantined == 0  # a note, not a rejection
    here = _patients(world, [holder, taker])
    assert here[str(holder)][1] == chip and here[str(taker)][1] is None
    assert _notes(world) == [
        (
            str(taker),
            f"loaded with a correction: microchip {chip} is also on animal {holder} ({holder_name}); "
            f"kept on animal {holder}",
        )
    ]
    # the next sync brings the animal again (a new version in Animana): still one note, the chip where it was
    world.sim.edit(PRACTICE, "animals", taker, {"colour": "zwart-wit"})
    assert _run_status(world, _sync(world))[0] == "succeeded"
    assert _patients(world, [holder, taker])[str(taker)][1] is None
    assert len(_notes(world)) == 1
    world.assert_counts_match()  # every animal is here: nothing missing from the mirror


def test_two_new_animals_with_one_chip_load_with_it_on_the_lowest_animana_id(synced_world):
    world = synced_world
    chip = "528140000777001"
    animal = {
        "relation_ids": [1],
        "species": "dog",
        "gender": "female",
        "deceased": False,
        "chip_number": chip,
    }
    ids = world.sim.inject(
        PRACTICE, "animals", [{**animal, "name": "Tweeling A"}, {**animal, "name": "Tweeling B"}]
    )["ids"]
    first, second = sorted(ids)

    result = _sync(world)

    assert _run_status(world, result) == ("succeeded", None)
    assert _patients(world, [first, second]) == {
        str(first): ("Tweeling A", chip),
        str(second): ("Tweeling B", None),
    }
    assert _notes(world) == [
        (
            str(second),
            f"loaded with a correction: microchip {chip} is also on animal {first} (Tweeling A); "
            f"kept on animal {first}",
        )
    ]


def test_a_chip_registered_in_vetconnect_stays_on_that_patient(synced_world):
    world = synced_world
    chip = "528140000777002"
    with world.db.system() as session:
        local_id = session.execute(
            text(
                "INSERT INTO patient (practice_id, name, species, sex, microchip) "
                "VALUES (:pid, 'Nieuwkomer', 'cat', 'female', :chip) RETURNING id"
            ),
            {"pid": world.practices[0].practice_id, "chip": chip},
        ).scalar_one()
    animal = _chipped_animals(world)[0][0]
    world.sim.edit(PRACTICE, "animals", animal, {"chip_number": chip})

    result = _sync(world)

    assert _run_status(world, result) == ("succeeded", None)
    assert _patients(world, [animal])[str(animal)][1] is None
    assert _notes(world) == [
        (
            str(animal),
            f"loaded with a correction: microchip {chip} is also on patient {local_id} (Nieuwkomer, registered "
            f"in VetConnect); kept on patient {local_id}",
        )
    ]


def test_a_chip_an_animal_lets_go_of_in_the_same_page_moves_without_a_note(synced_world):
    """Swapping two animals' chips in Animana: neither keeps its old chip after the page, so both load."""
    world = synced_world
    (one, _, chip_one), (two, _, chip_two) = _chipped_animals(world)[:2]
    world.sim.edit(PRACTICE, "animals", one, {"chip_number": None})
    world.sim.edit(PRACTICE, "animals", two, {"chip_number": chip_one})
    world.sim.edit(PRACTICE, "animals", one, {"chip_number": chip_two})

    result = _sync(world)

    assert _run_status(world, result) == ("succeeded", None)
    here = _patients(world, [one, two])
    assert (here[str(one)][1], here[str(two)][1]) == (chip_two, chip_one)
    assert _notes(world) == []
