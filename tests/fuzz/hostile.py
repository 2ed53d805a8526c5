"""What an attacker, a broken gateway or a noisy line sends: hostile values and mutations.

Fully random bytes find little in a JSON parser (almost all of it is not JSON), so most
cases start from a valid message and break one thing in it: a field of the wrong type, a
field missing or added, a huge number, NaN, deep nesting, a very long or SQL-looking
string, or a few raw bytes (non-UTF-8, truncation).
"""

from __future__ import annotations

import json
from typing import Any, Final

from hypothesis import strategies as st

SQL_LIKE: Final = (
    "'; DROP TABLE bookings;--",
    '" OR 1=1 --',
    "1; DELETE FROM incidents WHERE 1=1",
    "') UNION SELECT password FROM operators --",
    "%' AND SLEEP(5) --",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
)
"""Strings that would do harm if anything pasted them into SQL or HTML."""

long_strings = st.builds(lambda s, n: (s * n)[:n], st.sampled_from(["x", "あ", *SQL_LIKE]),
                         st.sampled_from([65, 101, 301, 1001, 10_000, 100_000]))  # fmt: skip
"""Just past the limits we have (64, 100, 300, 1000 characters) and far past them."""

huge_numbers = st.one_of(
    st.sampled_from([2**31, 2**32, 2**63, 2**64, -(2**63) - 1, 10**400, 1e308, -1e308, 5e-324]),
    st.integers(),
)
non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
"""Number tokens JSON does not have (Python's json writes the first three) or that overflow."""

leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(SQL_LIKE), huge_numbers, long_strings,
    st.sampled_from(["", "0", "1", "true", "null", "2026-11-24T09:00:00Z",
                     "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]),
)  # fmt: skip
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON value (hypothesis' own shapes), hostile leaves included."""


def deep(depth: int) -> str:
    """Nesting no gateway sends and a recursive parser might not survive."""
    return "[" * depth + "]" * depth


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (dict keys and list indexes), the root first."""
    found = [at]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*at, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*at, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    return [_replace(v, rest, new) if i == head else v for i, v in enumerate(value)]


def _drop(value: Any, path: tuple[Any, ...]) -> Any:
    head, rest = path[0], path[1:]
    if not rest:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k != head}
        return [v for i, v in enumerate(value) if i != head]
    if isinstance(value, dict):
        return {**value, head: _drop(value[head], rest)}
    return [_drop(v, rest) if i == head else v for i, v in enumerate(value)]


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> bytes:
    """`valid` (a JSON object) serialised with one thing broken, or a few bytes changed."""
    paths = _paths(valid)
    path = draw(st.sampled_from(paths))
    how = draw(st.sampled_from(["replace", "drop", "add", "token", "deep", "bytes", "keep"]))
    value: Any = valid
    if how == "replace":
        value = _replace(valid, path, draw(json_values))
    elif how == "drop" and path:
        value = _drop(valid, path)
    elif how == "add":
        containers = [p for p in paths if isinstance(_at(valid, p), dict)]
        where = draw(st.sampled_from(containers))
        extra = {**_at(valid, where), draw(st.text(max_size=12)): draw(json_values)}
        value = _replace(valid, where, extra)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    if how in ("token", "deep"):  # a leaf's text swapped for something json.dumps never writes
        marker = "\u0000MARK\u0000"
        text = json.dumps(_replace(valid, path, marker) if path else {"x": marker})
        hostile = (
            draw(non_finite) if how == "token" else deep(draw(st.sampled_from([50, 300, 10_000])))
        )
        text = text.replace(json.dumps(marker), hostile)
    raw = text.encode()
    if how == "bytes":
        raw = draw(byte_edits(raw))
    return raw


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


@st.composite
def byte_edits(draw: st.DrawFn, raw: bytes) -> bytes:
    """`raw` truncated, or with a few bytes overwritten or inserted (0x80-0xFF: not UTF-8)."""
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["overwrite", "insert", "truncate"]))
        byte = draw(st.integers(0, 255) | st.integers(0x80, 0xFF))
        if edit == "truncate":
            del data[at:]
        elif edit == "insert" or at == len(data):
            data.insert(at, byte)
        else:
            data[at] = byte
    return bytes(data)
