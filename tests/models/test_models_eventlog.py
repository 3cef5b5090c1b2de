"""The event-log parser: other column names, integer codes, several timestamp formats, clear errors."""

from __future__ import annotations

import datetime as dt
import io

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.eventlog import EventLogError, chronological_split, read_event_log

FORMATS = {
    "%Y-%m-%dT%H:%M:%S": "iso",
    "%Y-%m-%d %H:%M:%S": "space",
    "%Y/%m/%d %H:%M:%S": "slashes",
    "%d-%m-%Y %H:%M:%S": "dutch",
    "%d.%m.%Y %H:%M": "dotted",
    "%Y-%m-%dT%H:%M:%S.%f": "fraction",
}


def _csv(text: str, **kwargs) -> pl.DataFrame:
    return read_event_log(
        io.StringIO(text), **{"case_col": "c", "activity_col": "a", "time_col": "t", **kwargs}
    )


def test_integer_codes_other_names_and_attributes():
    log = _csv("c;a;t;who\n7;12;2024-03-01 10:00:00;vet\n7;3;2024-03-01 09:00:00;nurse\n8;012;2024-03-02 08:00:00;vet\n",
               attr_cols=["who"])  # fmt: skip
    assert log.columns == ["case_id", "activity", "timestamp", "attr_who", "seq"]
    assert log.filter(pl.col("case_id") == "7")["activity"].to_list() == ["3", "12"]  # ordered by time
    assert log.filter(pl.col("case_id") == "8")["activity"].to_list() == ["12"]  # "012" is code 12
    assert log["seq"].to_list() == [0, 1, 0]


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMATS.values())
def test_timestamp_formats(fmt):
    moment = dt.datetime(2024, 11, 3, 14, 5, 6, 250000 if "%f" in fmt else 0)
    moment = moment.replace(second=0) if "%S" not in fmt else moment
    log = _csv(f"c,a,t\nx,go,{moment.strftime(fmt)}\n")
    assert log["timestamp"][0] == moment


def test_time_zones_and_epochs_become_naive_utc():
    log = _csv("c,a,t\nx,a,2024-06-01T12:00:00+02:00\nx,b,2024-06-01T11:30:00Z\n")
    assert log["timestamp"].to_list() == [dt.datetime(2024, 6, 1, 10), dt.datetime(2024, 6, 1, 11, 30)]
    seconds = _csv("c,a,t\nx,a,1717236000\n")["timestamp"][0]
    millis = _csv("c,a,t\nx,a,1717236000000\n")["timestamp"][0]
    assert seconds == millis == dt.datetime(2024, 6, 1, 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("c,a,t\n", "no events"),
        ("case,a,t\nx,a,2024-01-01\n", r"column\(s\) 'c' not found; the log has: 'case', 'a', 't'"),
        ("c,a,t\nx,a,yesterday\n", r"cannot read 'yesterday' \(data row 1\) as a timestamp"),
        ("c,a,t\nx,a,2024-01-01\nx,,2024-01-02\n", r"column 'a': empty value in data row 2"),
        ("c,a,t\nx,a,2024-01-01\ny,b,2024-01-02,extra,fields\n", "not a well-formed CSV"),
        ("c,a,t\nx,a,2024-01-01\nx,b,\n", "missing timestamp in data row 2"),
    ],
    ids=["empty", "header-only", "missing-column", "bad-time", "empty-activity", "ragged", "no-time"],
)
def test_malformed_logs_fail_with_a_clear_message(text, message):
    with pytest.raises(EventLogError, match=message):
        _csv(text)


def test_not_utf8_and_missing_file(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"c,a,t\nx,\xff\xfe,2024-01-01\n")
    with pytest.raises(EventLogError, match="not UTF-8"):
        read_event_log(path, case_col="c", activity_col="a", time_col="t")
    with pytest.raises(EventLogError, match="no such file"):
        read_event_log(tmp_path / "nope.csv", case_col="c", activity_col="a", time_col="t")


def test_mixed_day_first_and_month_first_is_refused_not_guessed():
    with pytest.raises(EventLogError, match="one convention per file"):
        _csv("c,a,t\nx,a,2024-01-31 10:00\nx,b,31/01/2024 10:00\n")


events = st.lists(
    st.tuples(
        st.integers(0, 30),  # case
        st.one_of(st.integers(0, 500), st.sampled_from(["check-in", "consult", "invoice", "Pay ment", "é"])),
        st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1)).map(
            lambda d: d.replace(microsecond=0)
        ),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(events=events, fmt=st.sampled_from(list(FORMATS)[:4]), sep=st.sampled_from([",", ";", "\t"]))
def test_parser_round_trips_any_log(events, fmt, sep):
    frame = pl.DataFrame({"Case": [f"case-{c}" for c, _, _ in events], "Act": [str(a) for _, a, _ in events],
                          "When": [t.strftime(fmt) for _, _, t in events]})  # fmt: skip
    buffer = io.StringIO()
    frame.write_csv(buffer, separator=sep)
    buffer.seek(0)
    log = read_event_log(buffer, case_col="Case", activity_col="Act", time_col="When")
    assert log.height == len(events)
    assert sorted(zip(log["case_id"], log["activity"], log["timestamp"], strict=True)) == sorted(
        (f"case-{c}", str(a), t) for c, a, t in events
    )
    # Within a case, time never goes backwards and seq counts 0..n-1.
    for _, case in log.group_by("case_id"):
        assert case["timestamp"].is_sorted()
        assert case["seq"].to_list() == list(range(case.height))


@settings(max_examples=40, deadline=None)
@given(events=events)
def test_split_keeps_cases_whole_and_is_chronological(events):
    log = read_event_log(
        pl.DataFrame({"c": [str(c) for c, _, _ in events], "a": [str(a) for _, a, _ in events],
                      "t": [t for _, _, t in events]}),  # fmt: skip
        case_col="c", activity_col="a", time_col="t",
    )  # fmt: skip
    if log["case_id"].n_unique() < 2:
        with pytest.raises(EventLogError, match="at least two cases"):
            chronological_split(log)
        return
    train, test = chronological_split(log)
    assert set(train["case_id"]).isdisjoint(set(test["case_id"]))
    assert train.height + test.height == log.height
    train_starts = train.group_by("case_id").agg(pl.col("timestamp").min())["timestamp"]
    test_starts = test.group_by("case_id").agg(pl.col("timestamp").min())["timestamp"]
    assert train_starts.max() <= test_starts.min()
