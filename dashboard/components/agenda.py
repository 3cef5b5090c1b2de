"""The agenda as a plotly timeline: one row per resource, one bar per appointment, coloured by type."""

from __future__ import annotations

import datetime as dt

import plotly.express as px
import polars as pl
import streamlit as st


def timeline(frame: pl.DataFrame, tz: dt.tzinfo, *, start: dt.datetime, end: dt.datetime, key: str) -> None:
    if frame.is_empty():
        st.info("No appointments in this period.")
        return
    local = frame.with_columns(
        pl.col("starts_at").dt.convert_time_zone(str(tz)).dt.replace_time_zone(None),
        pl.col("ends_at").dt.convert_time_zone(str(tz)).dt.replace_time_zone(None),
        pl.col("patient").fill_null("—"),
        pl.col("client").fill_null(""),
    ).with_columns(pl.col("starts_at").dt.strftime("%d-%m %H:%M").alias("when"))
    hover = {"when": True, "patient": True, "client": True, "status": True, "id": True, "resource": False}
    if "writeback" in local.columns:  # not yet in step with Animana: the marker's symbol before the name
        symbol = pl.col("writeback").str.slice(0, 1)
        local = local.with_columns(
            pl.when(symbol != "")
            .then(symbol + " " + pl.col("patient"))
            .otherwise(pl.col("patient"))
            .alias("patient")
        )
        hover["writeback"] = True
    colours = dict(zip(local["type"].to_list(), local["colour"].to_list(), strict=True))
    figure = px.timeline(
        local.to_pandas(), x_start="starts_at", x_end="ends_at", y="resource", color="type",
        color_discrete_map=colours, text="patient",
        hover_data=hover, labels={"writeback": "Animana"},
    )  # fmt: skip
    figure.update_yaxes(autorange="reversed", title=None)
    # Numeric day-month and 24-hour times: plotly's own date labels are English ("Dec 4, 2026").
    one_day = end - start <= dt.timedelta(days=1)
    figure.update_xaxes(range=[start.replace(tzinfo=None), end.replace(tzinfo=None)], title=None,
                        tickformat="%H:%M" if one_day else "%d-%m<br>%H:%M")  # fmt: skip
    figure.update_traces(textposition="inside", insidetextanchor="start", textangle=0)
    figure.update_layout(height=140 + 48 * local["resource"].n_unique(), margin={"l": 10, "r": 10, "t": 60, "b": 10},
                         legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "title": None})  # fmt: skip
    st.plotly_chart(figure, width="stretch", key=key)
