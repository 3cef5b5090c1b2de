"""Messages: how the practice's reminders and appointment messages fared — a delivery report per day, kind,
channel and state for a period (default the last 14 days) with its totals and a chart, and the messages that did
not reach the owner (bounced, failed, not sent) with the client's name, phone and why: the list the front desk
phones owners from. With the permission to write clients, "Send due messages now" queues what is due at once
instead of at the schedule's next run; the sender (Dagster's schedule, or the demo's loop) sends them. In demo
mode the mailbox of the local mail server and the SMS simulator is shown too."""

from __future__ import annotations

import datetime as dt

import httpx
import plotly.express as px
import polars as pl
import streamlit as st

from dashboard.components import session as ctx
from dashboard.components import tables
from dashboard.runtime import app_runtime, demo_mailbox
from warehouse.kernel import formatting as fmt
from warehouse.messaging import mailbox
from warehouse.messaging.on_request import SEND_PERMISSION, queue_due_now
from warehouse.messaging.queries import CHART_STATES, STATE_LABELS, delivery_report, problem_messages, waiting
from warehouse.security.permissions import NotPermitted

DEFAULT_DAYS = 14
DUTCH = {"separators": ",."}  # plotly: decimal comma, thousands dot
OUTCOME_COLOURS = {"Sent": "#4C78A8", "Delivered": "#54A24B", "Bounced": "#E45756", "Failed": "#B279A2",
                   "Not sent": "#BAB0AC"}  # fmt: skip
REPORT: tables.Spec = {
    "day": ("Day", "date"), "kind_label": ("Message", "text"), "channel_label": ("Channel", "text"),
    "state_label": ("State", "text"), "messages": ("Messages", "count"),
}  # fmt: skip
PROBLEMS: tables.Spec = {
    "at": ("When", "date_time"), "client": ("Client", "text"), "phone": ("Phone", "text"),
    "patient": ("Animal", "text"), "kind_label": ("Message", "text"), "channel_label": ("Channel", "text"),
    "state_label": ("State", "text"), "why": ("Why", "text"),
}  # fmt: skip

practice_id = ctx.one_practice("msg.practice")
zone = ctx.zone(practice_id)
today = ctx.now().astimezone(zone).date()
ctx.breadcrumbs("Messages", ctx.practice_name(practice_id))
st.title("Messages to owners")

if ctx.may(SEND_PERMISSION):
    if st.button("Send due messages now", icon=":material/send:", key="msg.send"):
        with st.status("Queueing the messages due now…", expanded=True) as progress:
            st.write("Looking for reminders and appointments that are due…")
            try:
                with ctx.tenant() as session:
                    run = queue_due_now(session, ctx.actor(), practice_id, now=ctx.now())
                    now_waiting = waiting(session, practice_id)
            except NotPermitted as refused:
                progress.update(label="Not queued", state="error")
                st.error(str(refused))
            else:
                st.write(f"{fmt.number(run.queued)} queued, {fmt.number(run.skipped)} not sent "
                         "(no consent, or no address for the consented channel).")  # fmt: skip
                st.write(f"{fmt.number(now_waiting.messages)} message(s) wait for the sender, which sends the "
                         "outbox every 15 minutes during the day.")  # fmt: skip
                progress.update(label=f"Queued {fmt.number(run.queued)} message(s)", state="complete")

default = (today - dt.timedelta(days=DEFAULT_DAYS - 1), today)
chosen = st.date_input("Period", value=default, key="msg.period", format="DD-MM-YYYY", max_value=today)
first_day, last_day = chosen if isinstance(chosen, tuple) and len(chosen) == 2 else default
with ctx.tenant() as session:
    report = delivery_report(session, practice_id, first_day, last_day)
    problems = problem_messages(
        session, practice_id, first_day, last_day, master_key=app_runtime().master_key()
    )
    now_waiting = waiting(session, practice_id)

st.caption(
    f"Messages queued from {fmt.date(first_day)} to {fmt.date(last_day)}, in the state they are in now."
)
totals = report.totals
tiles = [("Messages", report.total), *((STATE_LABELS[s], totals[s]) for s in CHART_STATES),
         ("Waiting", totals["queued"] + totals["sending"])]  # fmt: skip
for column, (label, value) in zip(st.columns(len(tiles)), tiles, strict=True):
    column.metric(label, fmt.number(value))
if now_waiting.messages:
    st.caption(f"{fmt.number(now_waiting.messages)} message(s) wait for the sender now, the oldest queued "
               f"{fmt.date_time(now_waiting.oldest, zone)}.")  # fmt: skip

per_day = report.per_day().rename({s: STATE_LABELS[s] for s in CHART_STATES})
long = per_day.with_columns(pl.col("day").map_elements(fmt.date, return_dtype=pl.String)).unpivot(
    index="day", variable_name="Outcome", value_name="Messages"
)
chart = px.bar(long.to_pandas(), x="day", y="Messages", color="Outcome", labels={"day": "Day queued"},
               color_discrete_map=OUTCOME_COLOURS)  # fmt: skip
# Whole messages: a tick every so many that about five show, never a tick at half a message.
highest = per_day.select(pl.sum_horizontal(pl.exclude("day")).max()).item() or 1
chart.update_layout(**DUTCH).update_yaxes(tick0=0, dtick=max(1, round(highest / 5)), rangemode="tozero")
st.plotly_chart(chart, width="stretch", key="msg.chart")

st.subheader(f"Did not reach the owner · {problems.height}")
if problems.height:
    st.caption("Phone these owners: check their e-mail address or mobile number, or ask for their consent.")
    tables.show(problems, PROBLEMS, key="msg.problems", zone=zone)
else:
    st.caption("Every message of the period reached its owner or is still on its way.")

with st.expander("Per day, message, channel and state"):
    if report.rows.height:
        tables.show(report.rows, REPORT, key="msg.report", zone=zone)
    else:
        st.caption("No messages in this period.")

if (demo := demo_mailbox()) is not None:
    mail_dir, sms_url = demo
    with st.expander("Mailbox (demo)", icon=":material/inbox:"):
        st.caption(f"What the demo's local mail server ({mail_dir}) and SMS simulator ({sms_url}) received.")
        mail_tab, sms_tab = st.tabs(["E-mail", "SMS"])
        with mail_tab:
            kept = mailbox.mails(mail_dir)
            if not kept:
                st.caption("No mail yet.")
            for mail in kept[:50]:
                with st.expander(f"{fmt.date_time(mail.sent, zone)} · {mail.to} · {mail.subject}"):
                    st.text(mail.body)
        with sms_tab:
            try:
                texts = mailbox.sms_messages(sms_url)
            except httpx.HTTPError:
                st.warning(f"The SMS simulator does not answer on {sms_url}.")
            else:
                if not texts:
                    st.caption("No SMS yet.")
                frame = pl.DataFrame(
                    [{"accepted": s.accepted, "to": s.to, "status": s.status, "error": s.error, "body": s.body}
                     for s in texts],
                    schema={"accepted": pl.Datetime("us", "UTC"), "to": pl.String, "status": pl.String,
                            "error": pl.String, "body": pl.String},
                )  # fmt: skip
                tables.show(frame, {"accepted": ("Accepted", "date_time"), "to": ("To", "text"),
                                    "status": ("Status", "status"), "error": ("Why", "text"),
                                    "body": ("Text", "text")}, key="msg.sms", zone=zone)  # fmt: skip
