"""Properties of how an erasure finds the client's strings: the pattern matches each string literally and
case-insensitively inside any text — in PostgreSQL, where the copies are scrubbed — and the bytes form agrees
with PostgreSQL's own ``encode(…, 'escape')``, so a match in raw device bytes is replaced without touching the
bytes around it."""

from __future__ import annotations

import re

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.conftest import _libpq
from warehouse.privacy.copies import ERASED, MIN_NEEDLE, _escape_encoded, needle_pattern

# Printable text without NUL (no PostgreSQL text holds one), with the punctuation names and addresses have.
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
NEEDLE = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=MIN_NEEDLE, max_size=20).filter(
    lambda s: s.strip() == s
)
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def conn(fresh_db):
    with psycopg.connect(_libpq(fresh_db.admin_url), autocommit=True) as conn:
        yield conn


def _ascii_swapcase(text: str) -> str:
    """Other case for ASCII letters only: how a name is written in capitals by a device or in a note."""
    return "".join(c.swapcase() if c.isascii() else c for c in text)


@PROPERTY
@given(needle=NEEDLE, before=TEXT, after=TEXT)
def test_the_pattern_finds_the_string_anywhere_in_postgresql(conn, needle, before, after):
    pattern = needle_pattern([needle, None, "ab"])  # None and too-short strings are left out
    for written in (needle, _ascii_swapcase(needle)):
        haystack = before + written + after
        found, scrubbed = conn.execute(
            "SELECT %s ~* %s, regexp_replace(%s, %s, %s, 'gi')",
            (haystack, pattern, haystack, pattern, ERASED),
        ).fetchone()
        assert found
        # Nothing of it is left between the replacements (they are cut apart so they cannot form one).
        assert re.search(pattern, scrubbed.replace(ERASED, "\0"), re.ASCII | re.IGNORECASE) is None


@PROPERTY
@given(data=st.binary(max_size=60))
def test_the_bytes_form_is_postgresqls_escape_encoding(conn, data):
    assert _escape_encoded(data) == conn.execute("SELECT encode(%s, 'escape')", (data,)).fetchone()[0]


NAME = st.text(st.characters(categories=("L",)), min_size=MIN_NEEDLE, max_size=15)


@PROPERTY
@given(name=NAME, before=st.binary(max_size=20), after=st.binary(max_size=20))
def test_raw_bytes_keep_everything_around_the_match(conn, name, before, after):
    raw = before + name.encode() + after
    # ASCII letters match either case (as PostgreSQL folds them); the name is there exactly once.
    assume(raw.lower().count(name.encode().lower()) == 1)
    scrubbed = conn.execute(
        "SELECT decode(regexp_replace(encode(%s, 'escape'), %s, %s, 'gi'), 'escape')",
        (raw, needle_pattern([name], as_bytes=True), ERASED),
    ).fetchone()[0]
    assert scrubbed == before + ERASED.encode() + after
