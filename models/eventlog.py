"""Event logs of any origin, normalised to one shape: ``case_id``, ``activity``, ``timestamp``, ``attr_*``.

The models never see the source's column names or encodings. A log from VetConnect's warehouse, a BPI
Challenge CSV or an export of another PMS all become a polars frame with:

- ``case_id`` (str), ``activity`` (str: integer activity codes become their decimal text),
- ``timestamp`` (naive UTC ``Datetime[us]``; aware inputs are converted, naive ones are taken as they are),
- ``seq`` (u32, the order within the case: time, then the file's own order for ties),
- one ``attr_<name>`` column (str) per requested attribute.

A malformed file raises :class:`EventLogError` with a message that names the column and the first bad row,
so a CLI can print it as is.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

END = "<end>"  # the pseudo-activity "case ends", predicted after the last event of a case

# Tried in order on every value of a string timestamp column; the first format that parses *all* values wins
# (so "01/02/2024" is read consistently as one convention, never half day-first and half month-first).
TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%#z",
    "%Y-%m-%d %H:%M:%S%#z",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%d",
    "%d-%m-%Y",
    "%d/%m/%Y",
    "%Y/%m/%d",
)
# Integer timestamps: seconds or milliseconds since the epoch, told apart by magnitude (1e11 s is year 5138).
_EPOCH_MS_ABOVE = 100_000_000_000


class EventLogError(ValueError):
    """The file or frame is not a usable event log; the message says which column and row and why."""


@dataclass(frozen=True)
class LogColumns:
    case: str
    activity: str
    time: str
    attrs: tuple[str, ...] = ()


def read_event_log(
    source: str | Path | io.IOBase | pl.DataFrame,
    *,
    case_col: str,
    activity_col: str,
    time_col: str,
    attr_cols: Sequence[str] = (),
    separator: str | None = None,
) -> pl.DataFrame:
    """Read a CSV (path or file object) or take a frame, and normalise it (see the module docstring)."""
    columns = LogColumns(case_col, activity_col, time_col, tuple(attr_cols))
    frame = source if isinstance(source, pl.DataFrame) else _read_csv(source, separator)
    return normalise(frame, columns)


def _read_csv(source: str | Path | io.IOBase, separator: str | None) -> pl.DataFrame:
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise EventLogError(f"{path}: no such file")
        raw = path.read_bytes()
        name = str(path)
    else:
        raw = source.read()
        raw = raw.encode() if isinstance(raw, str) else raw
        name = "<stream>"
    if not raw.strip():
        raise EventLogError(f"{name}: the file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EventLogError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    sep = separator or _sniff_separator(text)
    try:
        # Everything as text: types are decided per column below, with messages that name the bad row.
        return pl.read_csv(io.StringIO(text), separator=sep, infer_schema=False, truncate_ragged_lines=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EventLogError(f"{name}: not a well-formed CSV file ({first})") from None


def _sniff_separator(text: str) -> str:
    header = text.splitlines()[0]
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else ","


def normalise(frame: pl.DataFrame, columns: LogColumns) -> pl.DataFrame:
    wanted = [columns.case, columns.activity, columns.time, *columns.attrs]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise EventLogError(
            f"column(s) {', '.join(repr(c) for c in missing)} not found; the log has: "
            + ", ".join(repr(c) for c in frame.columns)
        )
    if frame.height == 0:
        raise EventLogError("the log has a header but no events")
    out = pl.DataFrame(
        {
            "case_id": _text(frame, columns.case),
            "activity": _text(frame, columns.activity),
            "timestamp": parse_timestamps(frame[columns.time], columns.time),
            **{f"attr_{a}": frame[a].cast(pl.String).fill_null("") for a in columns.attrs},
        }
    )
    return (
        out.with_row_index("_row")
        .sort(["case_id", "timestamp", "_row"])
        .with_columns(seq=pl.int_range(pl.len(), dtype=pl.UInt32).over("case_id"))
        .drop("_row")
    )


def _text(frame: pl.DataFrame, name: str) -> pl.Series:
    series = frame[name]
    if series.dtype.is_float():
        if (series.drop_nulls() % 1 != 0).any():
            raise EventLogError(f"column {name!r}: fractional numbers are not ids or activity codes")
        series = series.cast(pl.Int64)
    text = series.cast(pl.String).str.strip_chars()
    bad = text.is_null() | (text == "")
    if bad.any():
        row = int(bad.arg_true()[0])
        raise EventLogError(f"column {name!r}: empty value in data row {row + 1}")
    if series.dtype == pl.String:
        # Integer codes written as "07" and "7" are the same activity.
        as_int = text.str.to_integer(strict=False)
        if as_int.null_count() == 0:
            text = as_int.cast(pl.String)
    return text.rename(name)


def parse_timestamps(series: pl.Series, name: str = "timestamp") -> pl.Series:
    """Datetime (any zone), date, epoch seconds/ms, or text in one of :data:`TIMESTAMP_FORMATS`."""
    if series.null_count():
        row = int(series.is_null().arg_true()[0])
        raise EventLogError(f"column {name!r}: missing timestamp in data row {row + 1}")
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        return _naive_utc(series).dt.cast_time_unit("us").rename("timestamp")
    if dtype == pl.Date:
        return series.cast(pl.Datetime("us")).rename("timestamp")
    if dtype.is_integer() or dtype.is_float():
        return _from_epoch(series.cast(pl.Float64), name)
    text = series.cast(pl.String).str.strip_chars()
    numeric = text.cast(pl.Float64, strict=False)
    if numeric.null_count() == 0:
        return _from_epoch(numeric, name)
    # Tolerate "Z" and a trailing " UTC" (common exports) by mapping them to an explicit offset.
    text = text.str.replace(r"(?i)(Z| UTC)$", "+00:00")
    for fmt in TIMESTAMP_FORMATS:
        parsed = text.str.strptime(pl.Datetime("us"), fmt, strict=False, exact=True)
        if parsed.null_count() == 0:
            return _naive_utc(parsed).dt.cast_time_unit("us").rename("timestamp")
    best = max(
        TIMESTAMP_FORMATS,
        key=lambda f: text.len() - text.str.strptime(pl.Datetime("us"), f, strict=False).null_count(),
    )
    parsed = text.str.strptime(pl.Datetime("us"), best, strict=False, exact=True)
    row = int(parsed.is_null().arg_true()[0])
    raise EventLogError(
        f"column {name!r}: cannot read {text[row]!r} (data row {row + 1}) as a timestamp; accepted: ISO 8601, "
        "'YYYY-MM-DD HH:MM[:SS]', 'DD-MM-YYYY HH:MM[:SS]', 'DD/MM/YYYY …', 'MM/DD/YYYY …', epoch seconds or ms, "
        "one convention per file"
    )


def _naive_utc(series: pl.Series) -> pl.Series:
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return series.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return series


def _from_epoch(values: pl.Series, name: str) -> pl.Series:
    if values.is_nan().any() or values.is_infinite().any():
        raise EventLogError(f"column {name!r}: not a finite epoch number")
    scale = 1000.0 if float(values.abs().max() or 0) >= _EPOCH_MS_ABOVE else 1.0
    micros = (values / scale * 1_000_000).round(0)
    if float(micros.abs().max() or 0) > 253_402_300_799 * 1_000_000:  # beyond 9999-12-31
        raise EventLogError(f"column {name!r}: epoch value out of range")
    return micros.cast(pl.Int64).cast(pl.Datetime("us")).rename("timestamp")


def case_table(log: pl.DataFrame) -> pl.DataFrame:
    """One row per case: start, end, number of events (sorted by start, then id)."""
    return (
        log.group_by("case_id")
        .agg(start=pl.col("timestamp").min(), end=pl.col("timestamp").max(), events=pl.len())
        .sort(["start", "case_id"])
    )


def chronological_split(
    log: pl.DataFrame, train_fraction: float = 2 / 3
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cases ordered by start time: the first ``train_fraction`` train, the rest test (whole cases only)."""
    cases = case_table(log)
    if cases.height < 2:
        raise EventLogError("the log needs at least two cases to split into train and test")
    n_train = min(max(1, int(round(cases.height * train_fraction))), cases.height - 1)
    train_ids = cases["case_id"][:n_train]
    mask = log["case_id"].is_in(train_ids.implode())
    return log.filter(mask), log.filter(~mask)
