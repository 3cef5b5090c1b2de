"""Owners to send messages to: a client with a dog, a booster due soon and its pending reminder, with the
contact details and consents a test asks for."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tests.factories import PracticeRows, cipher_for
from warehouse.schema.clients import Client, ClientConsent, ClientPatient, Patient
from warehouse.schema.clinical import Reminder, Vaccination


@dataclass(frozen=True)
class Owner:
    client_id: int
    patient_id: int
    reminder_id: int


def add_owner(
    session: Session,
    rows: PracticeRows,
    master_key: bytes,
    name: str,
    *,
    email: str | None = None,
    phone: str | None = None,
    preferred: str | None = None,
    consents: tuple[str, ...] = (),
    due_in_days: int = 7,
) -> Owner:
    cipher = cipher_for(session, rows.practice_id, master_key)
    client = Client(practice_id=rows.practice_id, last_name=name, initials="A.", preferred_channel=preferred,
                    email_enc=cipher.encrypt("email", email), phone_enc=cipher.encrypt("phone", phone))  # fmt: skip
    patient = Patient(practice_id=rows.practice_id, name=f"Rex {name}", species="dog")
    session.add_all([client, patient])
    session.flush()
    today = dt.date.today()
    vaccination = Vaccination(practice_id=rows.practice_id, patient_id=patient.id, vaccine_name="Nobivac L4",
                              given_on=today - dt.timedelta(days=358), due_on=today + dt.timedelta(days=due_in_days))  # fmt: skip
    session.add_all(
        [ClientPatient(practice_id=rows.practice_id, client_id=client.id, patient_id=patient.id), vaccination]
    )
    session.flush()
    reminder = Reminder(practice_id=rows.practice_id, patient_id=patient.id, client_id=client.id, kind="vaccination",
                        due_on=vaccination.due_on, vaccination_id=vaccination.id)  # fmt: skip
    session.add(reminder)
    for purpose in consents:
        session.add(ClientConsent(practice_id=rows.practice_id, client_id=client.id, purpose=purpose, granted=True,
                                  recorded_by=rows.user_id, how="in_person"))  # fmt: skip
    session.flush()
    return Owner(client.id, patient.id, reminder.id)
