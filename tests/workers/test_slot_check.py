"""The one-slot check of script calls: its hash-tag fast path answers as the CRC would."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from workers.scripts import CrossSlotError, check_one_slot

_part = st.text(alphabet="ab{}:x1", min_size=0, max_size=6)
_key = st.builds(lambda a, b, c: f"{a}{b}{c}", _part, st.sampled_from(["", "{b1}", "{b2}", "{}", "{"]), _part)


def _as_sent(key: str, raw: bool) -> Any:
    return key.encode() if raw else key


@given(st.lists(st.tuples(_key, st.booleans()), min_size=1, max_size=6))
def test_a_call_is_refused_exactly_when_its_keys_hash_to_more_than_one_slot(drawn: list[tuple[str, bool]]) -> None:
    keys = [_as_sent(k, raw) for k, raw in drawn]
    slots = {key_slot(k.encode()) for k, _ in drawn}
    if len(slots) > 1:
        with pytest.raises(CrossSlotError):
            check_one_slot("test", keys)
    else:
        check_one_slot("test", keys)


def test_keys_of_one_business_with_a_key_of_their_own_pass_without_the_cache() -> None:
    base = [f"menusync:{{398}}:{name}".encode() for name in ("desired", "dver", "pending")]
    for n in range(3):
        check_one_slot("record", [*base, f"menusync:{{398}}:delivery:standard:msg-{n}".encode()])
    with pytest.raises(CrossSlotError):
        check_one_slot("record", [*base, b"menusync:{399}:delivery:standard:msg"])
