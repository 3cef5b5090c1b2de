"""The hub's search names each hit's practice and never cuts the hits off silently (issue 13). Each test asserts
what the user sees."""

from __future__ import annotations

from tests.factories import PASSWORD
from tests.practice_world import click, sign_in
from warehouse.schema.clients import Patient
from warehouse.security.accounts import add_user


def ok(at) -> None:  # noqa: ANN001
    assert not at.exception, [e.value for e in at.exception]


def patient_hits(at) -> dict[str, str]:  # noqa: ANN001
    """The patient hits on the page: key -> label."""
    return {b.key: b.label for b in at.button if b.key and b.key.startswith("hit-patient-")}


def test_every_hit_names_its_practice_and_more_shows_the_next_hits(app_env):
    a1, a2 = app_env.world.practices["a1"], app_env.world.practices["a2"]
    names = {a1.practice_id: "Praktijk a1", a2.practice_id: "Praktijk a2"}
    with app_env.system() as session:
        session.add_all(
            Patient(practice_id=rows.practice_id, name=f"Pluis {code}-{n}", species="cat")
            for code, rows in (("a1", a1), ("a2", a2))
            for n in range(10)
        )  # fmt: skip
    at = sign_in("fm-a")  # franchise manager: all practices of franchise fa (a1, a2)
    at.text_input(key="hub.query").input("Pluis").run()
    ok(at)
    first = patient_hits(at)
    assert len(first) == 8
    for key, label in first.items():
        practice_id = int(key.split("-")[2])
        assert names[practice_id] in label, label
    assert any(m.value == "**Patients** · first 8" for m in at.markdown)
    click(at, "Show more patients")
    ok(at)
    second = patient_hits(at)
    assert len(second) == 16 and set(first) <= set(second)  # the next ones, none of the first lost
    click(at, "Show more patients")
    ok(at)
    assert len(patient_hits(at)) == 20  # all of them, and no more to ask for
    assert not any(b.label == "Show more patients" for b in at.button)
    assert any(m.value == "**Patients** · 20" for m in at.markdown)
    # A new query starts at one page again.
    at.text_input(key="hub.query").input("Pluis a1").run()
    assert len(patient_hits(at)) == 8


def test_a_vet_at_two_practices_sees_the_practice_of_each_hit(app_env):
    a1, a2 = app_env.world.practices["a1"], app_env.world.practices["a2"]
    with app_env.system() as session:
        add_user(session, username="vet-a12", full_name="Vet Beide", password=PASSWORD,
                 memberships=[(a1.practice_id, "veterinarian"), (a2.practice_id, "veterinarian")])  # fmt: skip
    at = sign_in("vet-a12")
    at.text_input(key="hub.query").input("Bello").run()
    ok(at)
    hits = patient_hits(at)
    assert hits and all("Praktijk a" in label for label in hits.values())
    # A vet at one practice needs no practice name on the hits.
    vet = sign_in("vet-a1")
    vet.text_input(key="hub.query").input("Bello").run()
    assert all("Praktijk" not in label for label in patient_hits(vet).values())
