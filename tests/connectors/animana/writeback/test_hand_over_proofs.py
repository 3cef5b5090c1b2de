"""Which answers prove that an entry handed over to Animana never arrived (`dispatcher.none_taken`): only then may
its hand-over mark go, and a value of it found in Animana count as an Animana user's edit."""

from __future__ import annotations

import pytest

from connectors.animana.writeback.dispatcher import none_taken
from connectors.animana.writeback.sender import Refused, Retry, Sent, Stale
from warehouse.integration.outbox import HandOver

FIRST = HandOver(first=True, same_request=True)  # handed over once: now
SAME_AGAIN = HandOver(first=False, same_request=True)  # handed over before as this very request
OTHER_BEFORE = HandOver(
    first=False, same_request=False
)  # handed over before as another request (older version)


@pytest.mark.parametrize(
    ("outcome", "proves"),
    [
        # Refused after Animana looked the key up: it would have replayed a request it had taken.
        (Stale("relations", {}), {FIRST: True, SAME_AGAIN: True, OTHER_BEFORE: False}),
        (Refused("Animana refused: city: too long"), {FIRST: True, SAME_AGAIN: True, OTHER_BEFORE: False}),
        # Refused before the key was looked up (429, sign-in), or no request at all (a parent on its way).
        (
            Retry("too many requests", 1.0, counts=False),
            {FIRST: True, SAME_AGAIN: False, OTHER_BEFORE: False},
        ),
        # No answer: it may have arrived.
        (Retry("503", 1.0, maybe_applied=True), {FIRST: False, SAME_AGAIN: False, OTHER_BEFORE: False}),
        # The key was refused, not the write: a request under it may have been taken.
        (
            Refused("Animana refused: Idempotency-Key: already used", maybe_applied=True),
            {FIRST: False, SAME_AGAIN: False, OTHER_BEFORE: False},
        ),
        (Sent("1", "v2"), {FIRST: False, SAME_AGAIN: False, OTHER_BEFORE: False}),
    ],
)
def test_only_an_answer_that_covers_every_hand_over_proves_the_write_never_arrived(outcome, proves):
    assert {hand_over: none_taken(outcome, hand_over) for hand_over in proves} == proves
