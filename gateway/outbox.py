"""Store-and-forward: every gateway->server message is written here before it is published.

One SQLite file in WAL mode with `synchronous=FULL`, so a row is on disk when `append`
returns and a SIGKILL or a power cut loses nothing the outbox has acknowledged. `seq` is
assigned here, monotonic per gateway, and persisted in the same transaction as the rows, so
it survives restarts even when the outbox is empty.

When the broker acknowledges a row (`ack`) it is deleted, or, with `receipts`, marked
delivered and kept until the server's receipt covers it (`confirm`): a broker may drop what
it acknowledged (a shared subscription with every server away), so what no receipt covers
in time is sent again (`overdue`). The seqs of the next birth and its Last Will are
reserved once (`status_seqs`) and kept, across failed connection attempts and restarts,
until that birth is stored (`append_status`): a seq the server never sees is then always a
message that was sent, never one an attempt burned.

Payloads are stored deflated (`gateway.outbox_codec`), about a ninth of their JSON, and read
back byte for byte: what is published is the JSON the producer made. Rows an outbox from
before that encoding stored as plain JSON are read as they are.

The file is bounded by `max_bytes` (WAL included; rows count as stored). When an append
would pass it, state snapshots that a newer row of the same `supersedes` key has replaced
are deleted, oldest first; the newest snapshot per key and every event are kept. When only
those remain the append is stored anyway, counted in `over_budget_appends` and logged:
losing an event is worse than a full disk budget.

When the disk itself refuses a write (full, or failing), the entries wait in memory
(`gateway.outbox_hold`: the newest state per unit, every event) and go to disk, with their
seqs, ahead of the next append that succeeds; `write_error` says why meanwhile. The
gateway keeps polling and says so on its health endpoint. The other writes (the birth's
reserved seqs, acknowledgements) raise `sqlite3.OperationalError`: the publisher takes it
as a failed connection and tries again later; what was not marked is sent again then (the
server drops the duplicates).

One connection, used from the asyncio thread only; every call is one short transaction.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.outbox_codec import decode, encode
from gateway.outbox_hold import Hold
from protocol.payloads import Envelope

log = logging.getLogger(__name__)

PAGE_SIZE: Final = 4096
ROW_OVERHEAD: Final = 48
"""Estimated bytes a row costs beyond its topic, stored payload and key (header, rowid, index)."""
PRUNE_CHUNK: Final = 32
"""Superseded snapshots deleted per step while making room."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    supersedes TEXT,
    delivered REAL
);
CREATE INDEX IF NOT EXISTS outbox_supersedes ON outbox (supersedes, seq)
    WHERE supersedes IS NOT NULL;
"""
_DELIVERED_INDEX: Final = """
CREATE INDEX IF NOT EXISTS outbox_delivered ON outbox (delivered) WHERE delivered IS NOT NULL
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """What a producer hands in; the outbox fills in `message.seq`.

    `supersedes` is the key under which a newer entry replaces this one (a unit's state
    topic); None for events and command results, which are never dropped.
    """

    topic: str
    message: Envelope
    retain: bool
    supersedes: str | None


@dataclass(frozen=True, slots=True)
class Message:
    """What the publisher sends: the payload is the JSON of the message, seq included."""

    seq: int
    topic: str
    payload: bytes
    retain: bool


def as_historical(message: Message) -> Message:
    """The same message flagged `"historical": true`, for a replay from the backlog."""
    data = json.loads(message.payload)
    data["historical"] = True
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Message(message.seq, message.topic, payload, message.retain)


class Outbox:
    """The durable queue between the producers and the publisher."""

    def __init__(self, path: Path, max_bytes: int, receipts: bool = False) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.receipts = receipts
        """Keep what the broker acknowledged until the server's receipt (see the module)."""
        self.over_budget_appends = 0
        """Appends stored although only events and newest snapshots were left to drop."""
        self.pruned = 0
        """Superseded snapshots deleted to stay within the budget."""
        self._over_budget = False
        self.hold = Hold()
        """Entries the disk refused, waiting for the next append that succeeds."""
        self.write_error: str | None = None
        """Why the last write failed, while the disk refuses writes; None when it takes them."""
        self.write_failures = 0
        # The WAL is checkpointed (and truncated) once it holds this many pages; it is part
        # of the budget, so the data itself must stay below max_bytes by a few WALs.
        self._wal_pages = max(16, min(1000, max_bytes // (16 * PAGE_SIZE)))
        wal_bytes = self._wal_pages * PAGE_SIZE
        self._data_limit = max(max_bytes // 2, max_bytes - 3 * wal_bytes)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute("PRAGMA cache_size = -256")  # KiB: appends and a page of reads
        self._db.execute(f"PRAGMA wal_autocheckpoint = {self._wal_pages}")
        self._db.execute(f"PRAGMA journal_size_limit = {wal_bytes}")
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
            if "delivered" not in columns:  # a file from before receipts
                self._db.execute("ALTER TABLE outbox ADD COLUMN delivered REAL")
            self._db.execute(_DELIVERED_INDEX)
            row = self._db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
            (top,) = self._db.execute("SELECT COALESCE(MAX(seq), -1) FROM outbox").fetchone()
            self._next_seq: int = max(row[0] if row else 0, top + 1)
            self._save_next_seq(self._next_seq)
            self.seq_run = self._seq_run()

    # -- producers ---------------------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> list[Message]:
        """Store what is held and `entries` in one transaction with consecutive seqs; what
        to publish. When the disk refuses, hold them and return nothing (see the module)."""
        try:
            messages = self._store(self.hold.merged(entries) if self.hold else entries)
        except sqlite3.OperationalError as exc:
            self.hold.add(entries)
            self._refused(exc)
            return []
        self.hold.clear()
        if self.write_error is not None:
            log.warning("outbox %s takes writes again", self.path)
            self.write_error = None
        return messages

    def _store(self, entries: Sequence[Entry]) -> list[Message]:
        messages: list[Message] = []
        rows: list[tuple[int, str, bytes, bool, str | None]] = []
        seq = self._next_seq
        for entry in entries:
            payload = entry.message.model_copy(update={"seq": seq}).model_dump_json().encode()
            messages.append(Message(seq, entry.topic, payload, entry.retain))
            rows.append((seq, entry.topic, encode(payload), entry.retain, entry.supersedes))
            seq += 1
        if not rows:
            return messages
        incoming = sum(len(r[1]) + len(r[2]) + 2 * len(r[4] or "") + ROW_OVERHEAD for r in rows)
        with self._transaction():
            self._make_room(incoming)
            self._db.executemany("INSERT INTO outbox VALUES (?, ?, ?, ?, ?, NULL)", rows)
            self._save_next_seq(seq)
            if not self._make_room(0):
                self._count_over_budget()
        self._next_seq = seq
        return messages

    def _refused(self, exc: sqlite3.OperationalError) -> None:
        self.write_failures += 1
        if self.write_error is None:
            log.error("outbox %s cannot write (%s): %d entries held in memory until it can",
                      self.path, exc, len(self.hold))  # fmt: skip
        self.write_error = str(exc)

    def status_seqs(self) -> tuple[int, int]:
        """The seqs of the next birth and of its Last Will (the birth's plus one).

        Reserved on the first call and returned again until `append_status` stores the
        birth, so attempts that never connect burn no seqs; kept across restarts.
        """
        row = self._db.execute("SELECT value FROM meta WHERE key = 'birth_seq'").fetchone()
        if row is not None:
            return int(row[0]), int(row[0]) + 1
        birth = self._next_seq
        with self._transaction():
            self._save_next_seq(birth + 2)
            self._db.execute("INSERT INTO meta VALUES ('birth_seq', ?)", (birth,))
        self._next_seq = birth + 2
        return birth, birth + 1

    def append_status(self, entry: Entry) -> Message:
        """Store the birth under its reserved seq (`status_seqs`) and end the reservation."""
        seq, _ = self.status_seqs()
        payload = entry.message.model_copy(update={"seq": seq}).model_dump_json().encode()
        with self._transaction():
            self._db.execute(
                "INSERT INTO outbox VALUES (?, ?, ?, ?, ?, NULL)",
                (seq, entry.topic, encode(payload), entry.retain, entry.supersedes),
            )
            self._db.execute("DELETE FROM meta WHERE key = 'birth_seq'")
        return Message(seq, entry.topic, payload, entry.retain)

    # -- publisher ---------------------------------------------------------------------------

    def pending(self, after_seq: int = -1, limit: int = 500) -> list[Message]:
        """Up to `limit` undelivered messages with seq above `after_seq`, in seq order."""
        return self._messages(
            "SELECT seq, topic, payload, retain FROM outbox WHERE seq > ? AND delivered IS NULL "
            "ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )

    def ack(self, seqs: Iterable[int], at: float | None = None) -> None:
        """The broker acknowledged these: delete them, or with `receipts` mark them delivered
        (at `at`, seconds since the epoch). Unknown seqs (pruned, confirmed) are ignored."""
        batch = [(seq,) for seq in seqs]
        if not batch:
            return
        with self._transaction():
            if self.receipts:
                now = time.time() if at is None else at
                self._db.executemany(
                    "UPDATE outbox SET delivered = ? WHERE seq = ?", [(now, s) for (s,) in batch]
                )
            else:
                self._db.executemany("DELETE FROM outbox WHERE seq = ?", batch)

    def confirm(self, ranges: Iterable[tuple[int, int]]) -> int:
        """The server stored these seqs (inclusive ranges): delete them; how many were here."""
        deleted = 0
        with self._transaction():
            for first, last in ranges:
                cursor = self._db.execute(
                    "DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (first, last)
                )
                deleted += cursor.rowcount
        return deleted

    def overdue(self, delivered_before: float, limit: int = 500) -> list[Message]:
        """Up to `limit` messages delivered before then that no receipt has covered."""
        return self._messages(
            "SELECT seq, topic, payload, retain FROM outbox WHERE delivered < ? "
            "ORDER BY seq LIMIT ?",
            (delivered_before, limit),
        )

    def _messages(self, query: str, parameters: tuple[float, int]) -> list[Message]:
        return [
            Message(seq, topic, decode(payload), bool(retain))
            for seq, topic, payload, retain in self._db.execute(query, parameters)
        ]

    # -- inspection --------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def backlog(self) -> int:
        """Messages stored and not yet acknowledged by the broker."""
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE delivered IS NULL"
        ).fetchone()
        return int(count)

    def unconfirmed(self) -> int:
        """Messages the broker acknowledged and no receipt has covered yet."""
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE delivered IS NOT NULL"
        ).fetchone()
        return int(count)

    def size_bytes(self) -> int:
        """The files on disk: database plus WAL."""
        total = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            with suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    def close(self) -> None:
        """Checkpoint the WAL into the database and close."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()

    # -- inside ------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` when the body raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")  # may fail too when the disk is full
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back itself (disk full)
                self._db.execute("ROLLBACK")
            raise

    def _seq_run(self) -> str:
        """This outbox's name for its run of seqs, made once with the file (see
        `GatewayStatus.seq_run`): a spare gateway or a new file starts a new run."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'seq_run'").fetchone()
        if row is None:
            row = (secrets.randbits(63),)
            self._db.execute("INSERT INTO meta VALUES ('seq_run', ?)", row)
        return f"{row[0]:016x}"

    def _save_next_seq(self, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta VALUES ('next_seq', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (value,),
        )

    def _used_bytes(self) -> int:
        (pages,) = self._db.execute("PRAGMA page_count").fetchone()
        (free,) = self._db.execute("PRAGMA freelist_count").fetchone()
        return int(pages - free) * PAGE_SIZE

    def _make_room(self, incoming: int) -> bool:
        """Delete superseded snapshots, oldest first, until `incoming` more bytes fit."""
        while self._used_bytes() + incoming > self._data_limit:
            doomed = self._db.execute(
                "SELECT seq FROM outbox AS o WHERE supersedes IS NOT NULL AND seq < "
                "(SELECT MAX(seq) FROM outbox WHERE supersedes = o.supersedes) "
                "ORDER BY seq LIMIT ?",
                (PRUNE_CHUNK,),
            ).fetchall()
            if not doomed:
                return False
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", doomed)
            self.pruned += len(doomed)
        self._over_budget = False
        return True

    def _count_over_budget(self) -> None:
        self.over_budget_appends += 1
        if not self._over_budget:
            log.warning(
                "outbox %s is over its budget of %d bytes with only events and the newest "
                "snapshots left; storing anyway",
                self.path,
                self.max_bytes,
            )
        self._over_budget = True
