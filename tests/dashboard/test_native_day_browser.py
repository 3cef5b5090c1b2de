"""A day on VetConnect as the system of record, in a real Chromium on one running app: the receptionist registers
a new client (a bad postcode is refused at its field first), registers a dog for that client and books it into a
free slot; the vet opens the dog's record, writes the consult note, adds a coded diagnosis found by searching
the coded list, records a weight with a decimal comma (an implausible one is refused at its field first) and
orders a lab test. The sender takes the order to a lab simulator over real TCP (MLLP), the lab acknowledges it
and sends its ORU result to our own MLLP listener, which ingests it into the test database; after a reload the
vet sees the order "result in" with its values, the diagnosis and the weight (and its chart).

Every step asserts what the user sees (Dutch dates and numbers) and, where it saves, the saved row. Screenshots
go to ``test-artifacts/native-day-*.png``; the time of each step to ``test-artifacts/native-day-timings.txt``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import select

from connectors.devices.ingest import DeviceStore
from connectors.devices.lab_simulator import LabSimulator
from connectors.devices.mllp import MLLPConfig, hl7_handler, start_in_background
from connectors.devices.order_sender import send_queued_orders
from tests.conftest import MASTER_KEY, Database
from tests.connectors.devices.devices_support import wait_for
from tests.dashboard.browser_support import (
    ARGS,
    ARTIFACTS,
    BROWSER,
    CHROMIUM,
    FIRST_RENDER_MS,
    DayClock,
    choose,
    free_port,
    grid_text,
    settle,
    streamlit_app,
)
from tests.dashboard.test_ws_browser_day import no_traceback, open_tab, sign_in, sign_out
from tests.factories import PASSWORD, TZ
from tests.practice_world import RECEPTIONIST
from warehouse.kernel import formatting as fmt
from warehouse.kernel.tenancy import AccessContext
from warehouse.records import lab_destinations, lab_orders
from warehouse.schema.clients import Client, ClientPatient, Patient, WeightMeasurement
from warehouse.schema.clinical import Diagnosis, DiagnosisCode, LabObservation, LabOrder, Visit
from warehouse.schema.scheduling import Appointment
from warehouse.security.accounts import add_user
from warehouse.security.permissions import Actor

pytestmark = BROWSER

LAB = "Labo Noord"
CLIENT, DOG = "Verhoeven", "Dribbel"


def shot(page, name: str) -> None:  # noqa: ANN001
    settle(page)
    page.screenshot(path=ARTIFACTS / f"native-day-{name}.png", full_page=True)


def at_its_field(page, field, message: str) -> None:  # noqa: ANN001
    """``message`` is shown right under ``field`` (its own column, within a line or two), not at the top."""
    from playwright.sync_api import expect

    shown = page.get_by_text(message, exact=False).first
    expect(shown).to_be_visible()
    box, under = field.bounding_box(), shown.bounding_box()
    assert box["y"] + box["height"] <= under["y"] <= box["y"] + box["height"] + 120, (box, under)
    assert under["x"] < box["x"] + box["width"] and box["x"] < under["x"] + under["width"], (box, under)


@pytest.fixture
def native_day(ws_db: Database) -> Iterator[tuple[str, Database, int]]:
    """The running app with a receptionist at a1, and a1's lab: the lab simulator on a free port, sending its
    results to our MLLP listener for a1 (which ingests into the test database). Yields (URL, database, a1 id)."""
    a1 = ws_db.world.practices["a1"].practice_id
    with ws_db.system() as session:
        add_user(session, username=RECEPTIONIST, full_name="Balie A1", password=PASSWORD,
                 memberships=[(a1, "receptionist")])  # fmt: skip
    store = DeviceStore(ws_db.app_engine, a1, MASTER_KEY)
    listener = start_in_background(hl7_handler(store.store), on_incomplete=store.on_incomplete,
                                   on_garbage=store.on_garbage, config=MLLPConfig(idle_timeout=10))  # fmt: skip
    simulator = LabSimulator(results_to=(listener.host, listener.port)).start()
    with ws_db.as_app(AccessContext.for_practices([a1])) as session:
        lab_destinations.add_destination(
            session, Actor.at(None, a1, {"practice_manager"}), practice_id=a1, name=LAB, host="127.0.0.1", port=simulator.port, message_type="OML^O21",
            tests=[lab_orders.TestChoice("CBC", "Haematology"), lab_orders.TestChoice("CHEM", "Biochemistry")],
            receiving_application="LabSim", receiving_facility="Lab", ack_timeout_seconds=10,
        )  # fmt: skip
    try:
        with streamlit_app(ws_db, free_port(), log_name="native-day-streamlit.log") as url:
            yield url, ws_db, a1
    finally:
        simulator.stop()
        listener.stop()


def test_register_book_diagnose_weigh_and_a_lab_result_over_mllp(native_day):
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    url, db, a1 = native_day
    clock = DayClock()
    try:
        _the_day(url, db, a1, clock)
    finally:
        clock.report("native-day-timings.txt")


def _the_day(url: str, db: Database, a1: int, clock: DayClock) -> None:  # noqa: PLR0915
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.set_default_timeout(FIRST_RENDER_MS)

        # --- reception: a new client; the bad postcode first --------------------------------------------------
        sign_in(page, clock, url, RECEPTIONIST, "Goedendag, Balie")
        clock.step(page, "reception: open Register client", page.get_by_role("link", name="Register client").click,
                   "Preferred channel")  # fmt: skip
        for label, value in (("Initials", "M."), ("Last name *", CLIENT), ("Street", "Oudegracht"),
                             ("House number", "112"), ("Postcode", "35111 AB"), ("City", "Utrecht"),
                             ("Phone", "06-4433 2211"), ("E-mail", "m.verhoeven@example.nl")):  # fmt: skip
            page.get_by_label(label, exact=True).fill(value)
        page.get_by_text("Reminders by e-mail", exact=True).click()
        clock.step(page, "reception: bad postcode refused", page.get_by_role("button", name="Register", exact=True).click,
                   "like 1234 AB")  # fmt: skip
        at_its_field(page, page.get_by_label("Postcode", exact=True), "like 1234 AB")
        no_traceback(page)
        shot(page, "01-bad-postcode")
        with db.system() as session:
            assert not session.scalars(select(Client.id).where(Client.last_name == CLIENT)).all()

        page.get_by_label("Postcode", exact=True).fill("3511ab")
        clock.step(page, "reception: register the client", page.get_by_role("button", name="Register", exact=True).click,
                   f"{CLIENT} is registered.")  # fmt: skip
        expect(page.get_by_text("+31644332211").first).to_be_visible()  # the phone as it was saved (E.164)
        shot(page, "02-client-card")
        with db.system() as session:
            client = session.scalars(
                select(Client).where(Client.practice_id == a1, Client.last_name == CLIENT)
            ).one()
        assert (client.postcode, client.city, client.initials) == ("3511 AB", "Utrecht", "M.")

        # --- reception: the dog, for that client ----------------------------------------------------------------
        clock.step(page, "reception: open Register patient", page.get_by_role("link", name="Register patient").click,
                   "Find the owner")  # fmt: skip
        owner_search = page.get_by_role("textbox", name="Find the owner")
        owner_search.fill(CLIENT)
        clock.step(page, "reception: find the owner", lambda: owner_search.press("Enter"), CLIENT)
        clock.step(page, "reception: choose the owner", page.get_by_role("button", name=re.compile(CLIENT)).first.click,
                   "primary owner")  # fmt: skip
        name = page.get_by_role("textbox", name="Name", exact=True)
        name.fill(DOG)
        name.press("Tab")
        choose(page, "Species", "dog")
        choose(page, "Breed", "Labrador Retriever")
        page.get_by_text("Male", exact=True).click()
        page.get_by_role("textbox", name="Colour").fill("blond")
        settle(page)
        clock.step(page, "reception: register the dog", page.get_by_role("button", name="Register patient").click,
                   f"{DOG} is registered.")  # fmt: skip
        # Said where the receptionist is looking too: the page stays scrolled down at the button she clicked.
        expect(page.get_by_test_id("stToast").first).to_contain_text(f"{DOG} is registered.")
        shot(page, "03-dog-registered")
        with db.system() as session:
            dog = session.scalars(select(Patient).where(Patient.practice_id == a1, Patient.name == DOG)).one()
            owner_ids = session.scalars(select(ClientPatient.client_id).where(
                ClientPatient.practice_id == a1, ClientPatient.patient_id == dog.id)).all()  # fmt: skip
        assert (dog.species, dog.breed, dog.sex, dog.colour) == ("dog", "Labrador Retriever", "male", "blond")
        assert owner_ids == [client.id]

        # --- reception: a free slot for the dog -----------------------------------------------------------------
        clock.step(page, "reception: open Scheduling", page.get_by_role("link", name="Scheduling").click,
                   "Find free slots")  # fmt: skip
        find = page.get_by_label("Find patient")
        find.fill(DOG)
        find.press("Enter")
        settle(page)
        choose(page, "Patient", DOG)
        clock.step(page, "reception: find free slots", page.get_by_role("button", name="Find free slots").click,
                   f"Free slots for {DOG}")  # fmt: skip
        first_slot = page.get_by_role("button", name=re.compile(r"· Dierenarts a1$")).first
        slot_label = first_slot.inner_text().strip()  # e.g. "vr 4 dec 2026 09:20 · Dierenarts a1"
        slot_day, slot_time = slot_label.split(" · ")[0].rsplit(" ", 1)
        clock.step(page, "reception: book the first slot", first_slot.click,
                   f"Booked {DOG} on {slot_day} at {slot_time} with Dierenarts a1")  # fmt: skip
        no_traceback(page)
        shot(page, "04-booked")
        with db.system() as session:
            booked = session.scalars(select(Appointment).where(Appointment.practice_id == a1,
                                                               Appointment.patient_id == dog.id)).one()  # fmt: skip
        local_start = booked.starts_at.astimezone(TZ)
        assert (booked.status, booked.client_id) == ("booked", client.id)
        assert (
            fmt.date(booked.starts_at, weekday=True, tz=TZ) == slot_day
            and f"{local_start:%H:%M}" == slot_time
        )
        sign_out(page)

        # --- the vet: the new dog's record, the consult note ---------------------------------------------------
        sign_in(page, clock, url, "vet-a1", "Goedendag, Vet")
        clock.step(page, "vet: open Patient record", page.get_by_role("link", name="Patient record").click,
                   "Search for a patient")  # fmt: skip
        find = page.get_by_label("Find patient")
        find.fill(DOG)
        clock.step(page, "vet: search the dog", lambda: find.press("Enter"), None)
        choose(page, "Patient", DOG)
        expect(page.get_by_role("heading", name=f"{DOG} · dog")).to_be_visible()
        expect(page.get_by_role("button", name=re.compile(CLIENT))).to_be_visible()  # its owner
        shot(page, "05-record")
        open_tab(page, clock, "vet: Write tab", "Write", "Consult note")
        page.get_by_label("S — Subjective (history)").fill("Hoest sinds drie dagen, eet minder.")
        page.get_by_label("O — Objective (examination)").fill(
            "Temperatuur 39,4 °C; harde hoest bij palpatie trachea."
        )
        clock.step(page, "vet: save the consult note", page.get_by_role("button", name="Save note").click,
                   "Consult note saved")  # fmt: skip

        # --- a coded diagnosis, found by searching the coded list ------------------------------------------------
        open_tab(page, clock, "vet: Diagnoses tab", "Diagnoses", "Add diagnoses")
        search = page.get_by_label("Search the coded list")
        search.fill("tracheo")
        clock.step(page, "vet: search the coded list", lambda: search.press("Enter"), None)
        choose(page, "Diagnoses", "Infectious tracheobronchitis · VC-027")
        page.keyboard.press("Escape")  # a multiselect stays open for the next choice
        page.get_by_text("Confirmed", exact=True).click()
        settle(page)
        clock.step(page, "vet: add the diagnosis", page.get_by_role("button", name="Add diagnoses").click,
                   "Added (confirmed): Infectious tracheobronchitis.")  # fmt: skip
        no_traceback(page)
        shot(page, "06-diagnosis")
        with db.system() as session:
            dx = session.scalars(select(Diagnosis).where(Diagnosis.practice_id == a1,
                                                         Diagnosis.patient_id == dog.id)).one()  # fmt: skip
            visit = session.scalars(
                select(Visit).where(Visit.practice_id == a1, Visit.patient_id == dog.id)
            ).one()
            code = session.scalar(select(DiagnosisCode.code).where(DiagnosisCode.id == dx.diagnosis_code_id))
        assert (dx.term, code, dx.status, dx.visit_id) == ("Infectious tracheobronchitis", "VC-027", "confirmed",
                                                           visit.id)  # fmt: skip
        assert visit.appointment_id == booked.id

        # --- a weight: an implausible one first (the comma forgotten), then with a decimal comma --------------
        open_tab(page, clock, "vet: Weight tab", "Weight", "Record a weight")
        weight = page.get_by_label("Weight (kg)")
        weight.fill("2450")
        clock.step(page, "vet: implausible weight refused", page.get_by_role("button", name="Record weight").click,
                   "Check the decimal comma")  # fmt: skip
        at_its_field(
            page, page.get_by_label("Weight (kg)"), "2450 kg is not plausible for a dog (0,1–120 kg)"
        )
        shot(page, "07-bad-weight")
        weight.fill("24,5")
        clock.step(page, "vet: record the weight", page.get_by_role("button", name="Record weight").click,
                   "Weight recorded: 24,5 kg.")  # fmt: skip
        expect(page.locator('[data-testid="stPlotlyChart"]')).to_be_visible()
        shot(page, "08-weight")
        with db.system() as session:
            grams = session.scalars(select(WeightMeasurement.weight_grams).where(
                WeightMeasurement.practice_id == a1, WeightMeasurement.patient_id == dog.id)).all()  # fmt: skip
        assert grams == [24_500]

        # --- a lab order, to the practice's lab ----------------------------------------------------------------
        open_tab(page, clock, "vet: Lab results tab", "Lab results", "Lab orders")
        choose(page, "Lab", f"{LAB} (OML^O21)")  # the practice has another lab as well
        choose(page, "Test", "Haematology (CBC)")
        clock.step(page, "vet: send the lab order", page.get_by_role("button", name="Send order").click,
                   f"is queued for {LAB}")  # fmt: skip
        with db.system() as session:
            order = session.scalars(select(LabOrder).where(LabOrder.practice_id == a1,
                                                           LabOrder.patient_id == dog.id)).one()  # fmt: skip
        accession = order.accession_number
        expect(page.get_by_text(f"Order {accession} is queued for {LAB}.")).to_be_visible()
        assert "queued" in grid_text(page)
        # Chosen again for the next order: a second click does not send the same test twice.
        expect(page.get_by_role("combobox", name="Test", exact=True)).to_have_value("")
        shot(page, "09-order-queued")

        # The sender, as the Dagster sensor or `vetconnect devices send-orders` runs it: the lab acknowledges;
        # a moment later its ORU arrives at our listener, is ingested and matched to the order by accession.
        summary = send_queued_orders(db.app_engine, a1)
        assert dict(summary.counts) == {"acknowledged": 1}
        wait_for(lambda: _observations(db, a1, order.id), timeout=30)

        # --- after a reload: result in, the values, the diagnosis and the weight -------------------------------
        clock.step(page, "vet: reload the record", page.reload, f"{DOG} · dog")
        expect(page.get_by_role("heading", name=f"{DOG} · dog")).to_be_visible()
        open_tab(page, clock, "vet: Lab results tab again", "Lab results", "Lab orders")
        grids = grid_text(page)
        assert "result in" in grids and accession in grids, grids
        assert "18,2" in grids and "▲ high" in grids, grids  # WBC, flagged by the lab; a decimal comma
        expect(page.get_by_text("1 value(s) outside the reference range.")).to_be_visible()
        no_traceback(page)
        shot(page, "10-result-in")
        results = page.get_by_test_id("stExpander").filter(has_text=f"Results of {accession} · Haematology")
        results.get_by_text(f"Results of {accession}").click()
        settle(page)
        results.scroll_into_view_if_needed()
        cells = results.locator('[role="gridcell"]')
        cells.first.wait_for(state="attached", timeout=15_000)
        values = " | ".join(cells.all_text_contents())
        assert "White blood cells" in values and "18,2" in values and "▲ high" in values, values
        assert "0,45" in values and "310" in values, values
        shot(page, "11-result-values")
        with db.system() as session:
            delivered = session.execute(select(LabOrder.delivery_state, LabOrder.ack_code).where(
                LabOrder.practice_id == a1, LabOrder.id == order.id)).one()  # fmt: skip
        assert tuple(delivered) == ("acknowledged", "AA")
        assert set(_observations(db, a1, order.id)) == {
            ("WBC", Decimal("18.2"), "H"), ("HCT", Decimal("0.45"), "N"), ("PLT", Decimal("310"), "N")}  # fmt: skip

        open_tab(page, clock, "vet: Diagnoses tab again", "Diagnoses", "Add diagnoses")
        grids = grid_text(page)
        for shown in ("Infectious tracheobronchitis", "VC-027", "Confirmed", "Vet a1"):
            assert shown in grids, grids
        assert fmt.date(visit.started_at, tz=TZ) in grids, grids  # the visit's day, Dutch
        shot(page, "12-diagnoses-after-reload")
        open_tab(page, clock, "vet: Weight tab again", "Weight", "Record a weight")
        expect(page.locator('[data-testid="stPlotlyChart"]')).to_be_visible()
        # The chart's days, each once (a single measurement once had the same date under every tick).
        days = page.locator('[data-testid="stPlotlyChart"] .xtick text').all_text_contents()
        assert f"{dt.datetime.now(TZ):%d-%m-%Y}" in days and len(days) == len(set(days)), days
        grids = grid_text(page)
        assert "24,5 kg" in grids, grids
        assert fmt.date(dt.datetime.now(TZ), tz=TZ) in grids, grids
        metric = page.locator('[data-testid="stMetric"]', has_text="Last weight")
        expect(metric).to_contain_text("24,5 kg")
        flagged = page.locator('[data-testid="stMetric"]', has_text="Lab values flagged")
        expect(flagged).to_have_text(re.compile(r"Lab values flagged\s*1\s*$"))
        shot(page, "13-weight-after-reload")
        no_traceback(page)
        browser.close()


def _observations(db: Database, practice_id: int, order_id: int) -> list[tuple[str, Decimal, str]]:
    """The order's results as stored: (code, value, flag)."""
    with db.system() as session:
        rows = session.execute(select(LabObservation.code, LabObservation.value_numeric, LabObservation.abnormal_flag)
                               .where(LabObservation.practice_id == practice_id,
                                      LabObservation.lab_order_id == order_id))  # fmt: skip
        return [tuple(r) for r in rows]
