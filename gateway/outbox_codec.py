"""How the outbox stores a payload: deflated against a preset dictionary, one format byte first.

A 72-hour outage is about 110,000 messages, nearly all unit states of some 1.7 KB of JSON that
differ from each other in a few numbers. Deflate primed with a dictionary of what such a
payload looks like stores one in about a ninth of that, at a few tens of microseconds a
message, so the outage fits the budget with nothing pruned.

Why a format byte and not a column: the row stays self-describing (topic, payload, retain,
key, as before), an old file needs no migration, and the budget counts `len` of what is
stored. The byte is a control character, which JSON never starts with (a JSON text opens
with whitespace or a value: `{`, `[`, `"`, `-`, a digit, `t`, `f`, `n`), so a payload
stored as plain JSON by an outbox from before this encoding is read as it is.

The dictionary is frozen: rows stored with it must decode for as long as they may sit in a
file. A better dictionary is a new one under a new format byte, the old one kept.
"""

from __future__ import annotations

import zlib
from typing import Final

DEFLATE_1: Final = 0x01
"""Raw deflate (no zlib header or checksum: this byte names the dictionary) with `DICTIONARY_1`."""

DICTIONARY_1: Final = (
    b'{"v":1,"seq":0,"ts":"2026-11-24T09:00:00.000Z","historical":false,"cmd_id":"","ok":true,'
    b'"error":null}'
    b'{"v":1,"seq":0,"ts":"2026-11-24T09:00:00.000Z","historical":false,"state":"online",'
    b'"boot_id":"","version":"","units":["rs485-1.1","rs485-1.2"],"seq_run":""}'
    b'{"v":1,"seq":0,"ts":"2026-11-24T09:00:00.000Z","historical":false,"event_id":"",'
    b'"kind":"port_faulted","port":1,"alarm":null,"error":"over_current","detail":null}'
    b'{"v":1,"seq":0,"ts":"2026-11-24T09:00:00.000Z","historical":false,"online":true,'
    b'"battery":{"soc_pct":81.5,"soh_pct":97.0,"voltage_v":51.2,"current_a":-3.1,'
    b'"power_w":-158.7,"temp_c":31.4,"rated_wh":2000.0,"state":"connected","alarms":[]},'
    b'"ports":[{"port":1,"status":"available","occupied":false,"enabled":true,"power_w":0.0,'
    b'"energy_wh":0.0,"temp_c":25.0,"error":"none","vendor_code":null,"display_code":null,'
    b'"session_s":0},{"port":2,"status":"unavailable","occupied":false,"enabled":false,'
    b'"power_w":0.0,"energy_wh":0.0,"temp_c":25.0,"error":"none","vendor_code":null,'
    b'"display_code":null,"session_s":0},{"port":3,"status":"faulted","occupied":true,'
    b'"enabled":true,"power_w":0.0,"energy_wh":1.25,"temp_c":61.2,"error":"high_temperature",'
    b'"vendor_code":null,"display_code":null,"session_s":95},{"port":4,"status":"finishing",'
    b'"occupied":true,"enabled":true,"power_w":0.2,"energy_wh":7.362,"temp_c":29.0,'
    b'"error":"none","vendor_code":null,"display_code":"K7Q2","session_s":6895},'
    b'{"port":5,"status":"charging","occupied":true,"enabled":true,"power_w":11.57,'
    b'"energy_wh":9.553,"temp_c":34.7,"error":"none","vendor_code":null,"display_code":null,'
    b'"session_s":1845},{"port":6,"status":"charging","occupied":true,"enabled":true,'
    b'"power_w":18.2,"energy_wh":3.1,"temp_c":30.2,"error":"none","vendor_code":null,'
    b'"display_code":"K7Q2","session_s":1200}]}'
)
"""Every gateway->server payload kind, the unit state last (deflate reaches what is near
most cheaply, and states are nearly all of a backlog), its ports in every status."""

_JSON_WHITESPACE: Final = frozenset(b" \t\n\r")


def encode(payload: bytes) -> bytes:
    """The bytes to store for a JSON payload."""
    deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS, zdict=DICTIONARY_1)
    return bytes((DEFLATE_1,)) + deflate.compress(payload) + deflate.flush()


def decode(stored: bytes) -> bytes:
    """The JSON payload, byte for byte as it was encoded; a row from before the encoding is
    JSON already. ValueError for a format this version does not know or a cut-off stream,
    zlib.error for a corrupt one."""
    if not stored or stored[0] >= 0x20 or stored[0] in _JSON_WHITESPACE:
        return stored
    if stored[0] != DEFLATE_1:
        raise ValueError(f"outbox payload in unknown format {stored[0]:#04x}")
    inflate = zlib.decompressobj(wbits=-zlib.MAX_WBITS, zdict=DICTIONARY_1)
    payload = inflate.decompress(stored[1:])
    if not inflate.eof:
        raise ValueError("outbox payload cut off")
    return payload
