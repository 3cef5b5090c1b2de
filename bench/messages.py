"""Messages to owners (issue 18): delivery throughput against a bare loop of the same sends, and exactly once
under injected faults. Not a test: it prints figures.

    python bench/messages.py                    # 2,000 messages a channel, >= 100 faults of each gateway
    python bench/messages.py --messages 200     # a quick look

An embedded PostgreSQL (or ``DATABASE_URL``), the local SMTP server (aiosmtpd) and the SMS gateway simulator, each
as its own process (``vetconnect messages smtp-server``, ``sms-simulator``); for the fault run the SMTP server runs in
this process, where its faults are set on its mailbox.

Throughput: a practice of owners who want e-mail and one of owners who want SMS, a vaccination reminder due for
each; ``generate_messages`` queues them (timed apart), then ``dispatch_practice`` sends the backlog, against a
bare loop of the same sends in the same run: the same mails over one ``smtplib`` connection, the same SMS as
``POST /messages`` plus the ``GET`` of its receipt (the dispatcher asks for each receipt in the same run) with one
``httpx`` client; one message in flight in both (the dispatcher sends one at a time). Fresh ids in the bare loop,
so the receivers take them as new messages.

Exactly once: a third practice of owners by e-mail and by SMS, and owners without consent. The SMS simulator
answers 30 % of the posts with 503, 429 + Retry-After, no answer in time (nothing stored), or stores the
message and then loses its answer; the SMTP server answers a third of the DATA commands with 451 (nothing kept) or
keeps the mail and then stalls past the client's timeout (the connection is given up after DATA). The dispatcher
runs round after round (the backoff's waiting skipped: retries made due at once) until nothing is left, with the
faults on until each gateway met at least ``--min-faults``. Then, counted at the receivers by message id:
due = sent, every sent message there exactly once under its own id, no other id, nothing to an owner without
consent.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tenancy import add_bench_franchise, add_bench_practice, libpq, server_url  # noqa: E402
from connectors.messaging.dispatch import Gateways, dispatch_practice  # noqa: E402
from connectors.messaging.sms import SmsGateway  # noqa: E402
from connectors.messaging.smtp import SmtpSender, build_mail  # noqa: E402
from connectors.messaging.smtp_server import running_smtp_server  # noqa: E402
from warehouse.kernel.ciphers import practice_cipher  # noqa: E402
from warehouse.kernel.db import app_url, make_engine  # noqa: E402
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session  # noqa: E402
from warehouse.messaging.generate import generate_messages  # noqa: E402
from warehouse.migrations import runner as migrate  # noqa: E402

DB_NAME = "vc_bench_messages"
MASTER_KEY = bytes(32)
SENDER = "praktijk@example.nl"
STALL = 0.3  # the gateways' stalled answers; longer than the fault run's client timeout
FAULT_TIMEOUT = 0.15
MAX_ROUNDS = 60

OWNERS = """
WITH owner AS (
  INSERT INTO client (practice_id, last_name, initials, preferred_channel, email_enc, phone_enc)
  SELECT %(p)s, 'Eigenaar ' || n, 'A.', %(channel)s, NULL, NULL FROM generate_series(1, %(n)s) n RETURNING id),
numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM owner),
animal AS (
  INSERT INTO patient (practice_id, name, species) SELECT %(p)s, 'Rex ' || n, 'dog' FROM numbered
  RETURNING id),
pairs AS (SELECT o.id AS client_id, a.id AS patient_id
          FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM owner) o
          JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM animal) a USING (n)),
link AS (INSERT INTO client_patient (practice_id, client_id, patient_id) SELECT %(p)s, client_id, patient_id FROM pairs),
dose AS (
  INSERT INTO vaccination (practice_id, patient_id, vaccine_name, given_on, due_on)
  SELECT %(p)s, patient_id, 'Nobivac L4', current_date - 358, current_date + 7 FROM pairs RETURNING id, patient_id)
INSERT INTO reminder (practice_id, patient_id, client_id, kind, due_on, vaccination_id)
SELECT %(p)s, d.patient_id, p.client_id, 'vaccination', current_date + 7, d.id FROM dose d JOIN pairs p USING (patient_id)
"""


def build(admin: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    url = make_url(admin).set(drivername="postgresql+psycopg", database=DB_NAME).render_as_string(False)
    migrate.upgrade(url)
    return url


def add_owners(admin_engine, practice_id: int, n: int, channel: str, *, consent: bool, start: int) -> None:  # noqa: ANN001
    """``n`` owners who prefer ``channel`` (with an e-mail address and a mobile number), each with a dog and a
    vaccination reminder due in a week; consenting to ``channel`` or to nothing."""
    with system_session(admin_engine, reason="bench: owners") as session:
        before = session.scalar(text("SELECT coalesce(max(id), 0) FROM client WHERE practice_id = :p"),
                                {"p": practice_id})  # fmt: skip
        session.connection().exec_driver_sql(OWNERS, {"p": practice_id, "n": n, "channel": channel})
        cipher = practice_cipher(session, practice_id, MASTER_KEY)
        ids = session.scalars(text("SELECT id FROM client WHERE practice_id = :p AND id > :b ORDER BY id"),
                              {"p": practice_id, "b": before}).all()  # fmt: skip
        for k, client_id in enumerate(ids):
            number = start + k + 1  # never ending in 0000: the simulator's unreachable numbers
            session.execute(
                text("UPDATE client SET email_enc = :e, phone_enc = :t WHERE practice_id = :p AND id = :c"),
                {"p": practice_id, "c": client_id, "e": cipher.encrypt("email", f"eigenaar{number}@example.nl"),
                 "t": cipher.encrypt("phone", f"0612{number:06d}")},
            )  # fmt: skip
        if consent:
            session.execute(
                text("INSERT INTO client_consent (practice_id, client_id, purpose, granted, how) "
                     "SELECT :p, id, :purpose, true, 'in_person' FROM client WHERE practice_id = :p AND id > :b"),
                {"p": practice_id, "b": before, "purpose": f"reminders_{channel}"},
            )  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def cli_process(command: str, ready: Callable[[int], None], home: str) -> Iterator[int]:
    """``vetconnect messages <command> --port P`` as its own process (its own interpreter: a server in this
    one would share the GIL with the dispatcher it is measured against); yields the port once ``ready`` passes."""
    port = _free_port()
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "vetconnect.cli", "messages", command, "--port", str(port)], cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "VETCONNECT_HOME": home},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready(port)
                break
            except (OSError, httpx.HTTPError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"vetconnect messages {command} did not start") from None
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _sms_ready(port: int) -> None:
    httpx.get(f"http://127.0.0.1:{port}/_sim/messages", timeout=1).raise_for_status()


def _smtp_ready(port: int) -> None:
    smtplib.SMTP("127.0.0.1", port, timeout=1).quit()


def queued(admin_engine, practice_id: int) -> list[tuple[str, str, str]]:  # noqa: ANN001
    """(to, subject, body) of the practice's queued messages, decrypted: the bare loop's sends."""
    with system_session(admin_engine, reason="bench: the sends of the bare loop") as session:
        rows = session.execute(
            text("SELECT m.channel, m.subject, m.body, c.email_enc, c.phone_enc FROM message_outbox m JOIN client c "
                 "ON c.practice_id = m.practice_id AND c.id = m.client_id WHERE m.practice_id = :p AND "
                 "m.state = 'queued' ORDER BY m.id"), {"p": practice_id},
        ).all()  # fmt: skip
        cipher = practice_cipher(session, practice_id, MASTER_KEY)
    from warehouse.messaging.outbox import e164

    return [
        (cipher.decrypt("email", r.email_enc) if r.channel == "email" else e164(cipher.decrypt("phone", r.phone_enc)),
         r.subject or "", r.body or "")
        for r in rows
    ]  # fmt: skip


def generate(app_engine, practice_id: int) -> float:  # noqa: ANN001
    import datetime as dt

    started = time.perf_counter()
    with tenant_session(app_engine, AccessContext.for_practices([practice_id])) as session:
        generate_messages(session, practice_id, now=dt.datetime.now(dt.UTC))
    return time.perf_counter() - started


def throughput(admin_engine, app_engine, smtp_port: int, sms_url: str, practices: dict[str, int]) -> None:  # noqa: ANN001
    print("\nThroughput (one message in flight in both arms)")
    print(
        f"  {'channel':<8} {'messages':>8} {'generate':>10} {'dispatcher':>12} {'bare loop':>12} {'ratio':>7}"
    )
    for channel, practice_id in practices.items():
        generating = generate(app_engine, practice_id)
        sends = queued(admin_engine, practice_id)
        with SmtpSender("127.0.0.1", smtp_port, SENDER) as email, SmsGateway(sms_url) as sms:
            started = time.perf_counter()
            run = dispatch_practice(app_engine, practice_id, MASTER_KEY, Gateways(email, sms))
            dispatcher = time.perf_counter() - started
        assert run["sent"] == len(sends), (run.counts, len(sends))
        started = time.perf_counter()
        if channel == "email":
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as bare:
                for to, subject, body in sends:
                    bare.send_message(build_mail(str(uuid.uuid4()), SENDER, to, subject, body))
        else:
            with httpx.Client(base_url=sms_url, timeout=10) as bare_http:
                for to, _, body in sends:
                    message_id = str(uuid.uuid4())
                    bare_http.post(
                        "/messages", json={"id": message_id, "to": to, "body": body}
                    ).raise_for_status()
                    bare_http.get(f"/messages/{message_id}").raise_for_status()
        bare_s = time.perf_counter() - started
        n = len(sends)
        print(f"  {channel:<8} {n:>8} {n / generating:>8,.0f}/s {n / dispatcher:>10,.0f}/s {n / bare_s:>10,.0f}/s "
              f"{bare_s / dispatcher:>6.2f}x")  # fmt: skip


def exactly_once(
    admin_engine, app_engine, smtp, sms_url: str, practice_id: int, min_faults: int, seed: int
) -> None:  # noqa: ANN001
    print(f"\nExactly once under faults (>= {min_faults} of each gateway; client timeouts {FAULT_TIMEOUT} s)")
    rng = random.Random(seed)
    httpx.post(
        f"{sms_url}/_sim/config", json={"rate": 0.3, "seed": seed, "stall_seconds": STALL}
    ).raise_for_status()
    smtp.mailbox.stall_seconds = STALL
    kept_before = {p.stem for p in smtp.mailbox.kept()}
    sms_before = {m["id"] for m in httpx.get(f"{sms_url}/_sim/messages").json()["messages"]}
    generate(app_engine, practice_id)
    faults_on = True
    rounds = 0
    with (
        SmtpSender(smtp.host, smtp.port, SENDER, timeout=FAULT_TIMEOUT) as email,
        SmsGateway(sms_url, read_timeout=FAULT_TIMEOUT) as sms,
    ):
        for rounds in range(1, MAX_ROUNDS + 1):  # noqa: B007 - the number of rounds is reported
            if faults_on:
                smtp.mailbox.script = [
                    rng.choice(["4xx", "lost", "none", "none", "none", "none"]) for _ in range(400)
                ]
            dispatch_practice(app_engine, practice_id, MASTER_KEY, Gateways(email, sms))
            stats = httpx.get(f"{sms_url}/_sim/messages").json()
            sms_faults, mail_faults = stats["faults"], smtp.mailbox.faults_injected
            if faults_on and sms_faults >= min_faults and mail_faults >= min_faults:
                faults_on = False
                httpx.post(f"{sms_url}/_sim/config", json={"rate": 0, "script": []}).raise_for_status()
                smtp.mailbox.script = []
            with system_session(admin_engine, reason="bench: retries due now") as session:
                left = session.execute(
                    text("UPDATE message_outbox SET next_attempt_at = now() WHERE practice_id = :p "
                         "AND state IN ('queued', 'sending') RETURNING id"), {"p": practice_id},
                ).all()  # fmt: skip
            if not left and not faults_on:
                dispatch_practice(
                    app_engine, practice_id, MASTER_KEY, Gateways(email, sms)
                )  # the last receipts
                break
    with system_session(admin_engine, reason="bench: the outcome") as session:
        rows = session.execute(
            text("SELECT m.message_id::text AS id, m.channel, m.state, m.attempts, "
                 "client_has_consent(m.practice_id, m.client_id, 'reminders_email') "
                 "OR client_has_consent(m.practice_id, m.client_id, 'reminders_sms') AS consented "
                 "FROM message_outbox m WHERE m.practice_id = :p"), {"p": practice_id},
        ).all()  # fmt: skip
    stats = httpx.get(f"{sms_url}/_sim/messages").json()
    at_sms = {m["id"]: m for m in stats["messages"] if m["id"] not in sms_before}
    kept = {p.stem for p in smtp.mailbox.kept()} - kept_before
    due = [r for r in rows if r.consented]
    sent = [r for r in due if r.state in ("sent", "delivered")]
    ours = {r.id for r in rows}
    reached = [r for r in sent if (r.id in at_sms if r.channel == "sms" else r.id in kept)]
    refused = {r.id for r in rows if not r.consented}
    print(
        f"  faults injected: SMS {stats['faults']} (503, 429, timeouts, answers lost), "
        f"SMTP {smtp.mailbox.faults_injected} (451, answers lost after DATA); {rounds} dispatcher rounds"
    )
    print(
        f"  due {len(due)}  sent {len(sent)}  (states: {sorted({r.state for r in due})}, "
        f"attempts max {max(r.attempts for r in due)})"
    )
    print(
        f"  at the receivers: {len(at_sms)} SMS + {len(kept)} mails; sent messages found there: "
        f"{len(reached)}/{len(sent)}"
    )
    # The receivers keep one message per id, so a duplicate to an owner is a message under a second id.
    print(
        f"  duplicates to owners: {len((set(at_sms) | kept) - ours)}; resends of an id the receiver already had "
        f"(kept once): SMS {sum(m['posts'] - 1 for m in at_sms.values())}, mail {smtp.mailbox.duplicates}"
    )
    print(
        f"  to owners without consent: {len(refused & (set(at_sms) | kept))} "
        f"(their messages: {len(refused)}, all skipped: {all(r.state == 'skipped' for r in rows if not r.consented)})"
    )
    ok = (
        len(sent) == len(due) == len(reached)
        and not (set(at_sms) | kept) - ours
        and not refused & (set(at_sms) | kept)
    )
    print(f"  exactly once: {'yes' if ok else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages a channel for the throughput")
    parser.add_argument(
        "--fault-owners", type=int, default=700, help="owners of the fault run (a tenth refuse)"
    )
    parser.add_argument("--min-faults", type=int, default=100, help="faults each gateway meets at least")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()

    admin = libpq(server_url())
    url = build(admin)
    with psycopg.connect(libpq(admin, DB_NAME), autocommit=True) as conn:
        franchise = add_bench_franchise(conn, 1)
        ids = [add_bench_practice(conn, franchise, MASTER_KEY) for _ in range(3)]
    admin_engine, app_engine = make_engine(url), make_engine(app_url(url, None))
    add_owners(admin_engine, ids[0], args.messages, "email", consent=True, start=0)
    add_owners(admin_engine, ids[1], args.messages, "sms", consent=True, start=10_000)
    faulty = args.fault_owners - args.fault_owners // 10
    add_owners(admin_engine, ids[2], faulty // 2, "email", consent=True, start=20_000)
    add_owners(admin_engine, ids[2], faulty - faulty // 2, "sms", consent=True, start=30_000)
    add_owners(admin_engine, ids[2], args.fault_owners // 10, "sms", consent=False, start=40_000)
    with (
        tempfile.TemporaryDirectory() as home,
        cli_process("smtp-server", _smtp_ready, home) as smtp_port,
        cli_process("sms-simulator", _sms_ready, home) as sms_port,
    ):
        sms_url = f"http://127.0.0.1:{sms_port}"
        throughput(admin_engine, app_engine, smtp_port, sms_url, {"email": ids[0], "sms": ids[1]})
        # The fault run's mail server is in this process: its faults are set on its mailbox.
        with running_smtp_server(Path(home) / "faults") as smtp:
            exactly_once(admin_engine, app_engine, smtp, sms_url, ids[2], args.min_faults, args.seed)
    admin_engine.dispose()
    app_engine.dispose()


if __name__ == "__main__":
    main()
