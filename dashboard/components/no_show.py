"""The no-show warning of the agenda: only booked appointments whose risk is clearly above the practice's
base rate (``models.no_show.model.elevated``), each with that base rate beside it, so that the warning stays
rare enough to act on (a reminder call) and says how much above normal the risk is."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import polars as pl
import streamlit as st

from models.serving import NoShowRisk
from warehouse.kernel import formatting as fmt


def risk_text(risk: NoShowRisk) -> str:
    """``verhoogd no-show-risico: 23 % (gemiddeld 8 %)``."""
    return f"verhoogd no-show-risico: {fmt.percent(risk.p_no_show, 0)} (gemiddeld {fmt.percent(risk.base_rate, 0)})"


def render_no_show_risks(booked: pl.DataFrame, risks: dict[int, NoShowRisk], zone: ZoneInfo) -> None:
    """``booked``: the agenda's booked appointments (``id``, ``starts_at``, ``patient``, ``client``,
    ``resource``), shown in the practice's ``zone``. Shows nothing when none of them has an elevated risk."""
    flagged = sorted(
        (
            (risks[i], row)
            for row in booked.iter_rows(named=True)
            if (i := row["id"]) in risks and risks[i].elevated
        ),
        key=lambda pair: -pair[0].p_no_show,
    )
    if not flagged:
        return
    st.warning(f"{len(flagged)} geboekte afspraak/afspraken met verhoogd no-show-risico — een herinneringstelefoontje "
               "kan het tijdslot redden.", icon=":material/event_busy:")  # fmt: skip
    st.dataframe(
        pl.DataFrame(
            [
                {
                    "Wanneer": f"{fmt.date(row['starts_at'], weekday=True, tz=zone)} {fmt.time(row['starts_at'], zone)}",
                    "Patiënt": row["patient"],
                    "Eigenaar": row["client"],
                    "Bij": row["resource"],
                    "No-show-risico": risk_text(risk),
                }
                for risk, row in flagged
            ],  # fmt: skip
            schema=["Wanneer", "Patiënt", "Eigenaar", "Bij", "No-show-risico"],
        ),
        hide_index=True,
    )
