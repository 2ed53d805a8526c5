"""The outbox: seqs, order, acks, the byte budget and crash safety. No broker needed."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gateway.config import GatewayConfig
from gateway.outbox import Entry, Message, Outbox, as_historical
from tests.gateway.conftest import event_entry, state_entry

MB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


def seqs(messages: list[Message]) -> list[int]:
    return [m.seq for m in messages]


def all_pending(outbox: Outbox) -> list[Message]:
    return outbox.pending(limit=10**9)


def test_seqs_are_consecutive_and_survive_reopen(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", MB)
    assert seqs(outbox.append([state_entry(1), event_entry(1), event_entry(2)])) == [0, 1, 2]
    assert outbox.status_seqs() == (3, 4)
    assert seqs(outbox.append([event_entry(3)])) == [5]
    outbox.close()

    outbox = Outbox(tmp_path / "o.db", MB)
    assert seqs(all_pending(outbox)) == [0, 1, 2, 5]
    assert outbox.status_seqs() == (3, 4)  # still reserved: no birth was stored
    assert outbox.append_status(event_entry(9)).seq == 3
    outbox.ack(range(6))
    assert outbox.backlog() == 0
    outbox.close()

    outbox = Outbox(tmp_path / "o.db", MB)  # empty, and the seq still goes on
    assert outbox.status_seqs() == (6, 7)
    assert seqs(outbox.append([event_entry(1)])) == [8]
    run = outbox.seq_run
    outbox.close()

    for name, same in (("o.db", True), ("other.db", False)):  # a new file starts another run
        outbox = Outbox(tmp_path / name, MB)
        assert (outbox.seq_run == run) is same
        outbox.close()


def test_payload_carries_its_seq_and_the_wire_format(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", MB)
    [message] = outbox.append([state_entry(3, minute=1.5)])
    data = json.loads(message.payload)
    assert data["seq"] == message.seq == 0
    assert data["ts"] == "2026-11-24T09:01:30.000Z"
    assert data["historical"] is False
    assert message.retain is True
    assert message.topic == "chargenet/v1/gw/gw-test/unit/rs485-1.3/state"
    assert all_pending(outbox) == [message]

    replayed = as_historical(message)
    assert json.loads(replayed.payload) == {**data, "historical": True}
    assert (replayed.seq, replayed.topic, replayed.retain) == (0, message.topic, True)
    outbox.close()


def test_pending_is_in_seq_order_after_a_cursor(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", 4 * MB)
    outbox.append([event_entry(u % 3 + 1, minute=u) for u in range(30)])
    outbox.append([state_entry(u % 3 + 1, minute=u) for u in range(30)])
    assert seqs(outbox.pending(limit=7)) == list(range(7))
    assert seqs(outbox.pending(after_seq=40, limit=100)) == list(range(41, 60))
    outbox.ack([0, 5, 41, 999])  # 999 was never stored: ignored
    assert seqs(outbox.pending(limit=5)) == [1, 2, 3, 4, 6]
    assert outbox.backlog() == 57
    outbox.close()


def test_ack_deletes_delivered_rows(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", MB)
    outbox.append([event_entry(1) for _ in range(10)])
    outbox.ack(m.seq for m in outbox.pending() if m.seq % 2 == 0)
    assert seqs(all_pending(outbox)) == [1, 3, 5, 7, 9]
    outbox.ack([])
    assert outbox.backlog() == 5
    outbox.close()


def test_pruning_drops_superseded_snapshots_oldest_first(tmp_path: Path) -> None:
    budget = 512 * 1024
    outbox = Outbox(tmp_path / "o.db", budget)
    events: set[int] = set()
    newest: dict[str, int] = {}
    for minute in range(600):  # 4 units, a snapshot a minute, an event every 10 minutes
        entries = [state_entry(u, minute) for u in range(1, 5)]
        if minute % 10 == 0:
            entries.append(event_entry(1 + minute % 4, minute))
        for entry, message in zip(entries, outbox.append(entries), strict=True):
            if entry.supersedes is None:
                events.add(message.seq)
            else:
                newest[entry.supersedes] = message.seq
        assert outbox.size_bytes() <= budget
    kept = set(seqs(all_pending(outbox)))
    assert outbox.pruned > 0
    assert events <= kept
    assert set(newest.values()) <= kept
    snapshots_kept = sorted(kept - events)
    # the oldest went first: what is left of the snapshots is one recent stretch
    assert snapshots_kept[-1] - snapshots_kept[0] < len(snapshots_kept) + len(events)
    assert outbox.over_budget_appends == 0
    outbox.close()


def test_events_are_kept_over_budget_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    budget = 64 * 1024
    outbox = Outbox(tmp_path / "o.db", budget)
    with caplog.at_level(logging.WARNING, logger="gateway.outbox"):
        for minute in range(100):
            outbox.append([event_entry(1, minute) for _ in range(10)] + [state_entry(1, minute)])
    assert outbox.backlog() == 100 * 10 + 1  # every event and the newest snapshot
    assert outbox.size_bytes() > budget
    assert outbox.over_budget_appends > 0
    warnings = [r for r in caplog.records if "over its budget" in r.getMessage()]
    assert len(warnings) == 1  # logged when it starts, counted on every append
    outbox.close()


def test_a_disk_that_refuses_writes_holds_events_and_the_newest_state_in_memory(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "o.db", MB)
    (pages,) = outbox._db.execute("PRAGMA page_count").fetchone()
    outbox._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
    for _ in range(1_000_000):  # until the file cannot grow
        if not outbox.append([event_entry(1)]):
            break
    top = outbox.next_seq
    refused = [state_entry(1, 1), event_entry(2), state_entry(1, 2)]
    assert outbox.append(refused[:1]) == [] and outbox.append(refused[1:]) == []
    assert outbox.write_error is not None and "full" in outbox.write_error
    assert len(outbox.hold) == 3  # every event, the newer state only
    assert outbox.next_seq == top  # no seq given to what is not on disk
    outbox._db.execute(f"PRAGMA max_page_count = {pages + 1000}")
    stored = outbox.append([event_entry(3)])
    assert seqs(stored) == [top, top + 1, top + 2, top + 3]
    kinds = [m.topic.rsplit("/", 1)[1] for m in stored]
    assert kinds == ["event", "event", "state", "event"]
    assert json.loads(stored[2].payload)["ts"].startswith("2026-11-24T09:02")
    assert outbox.write_error is None and len(outbox.hold) == 0
    assert outbox.write_failures == 3
    assert outbox.hold.coalesced == 1
    outbox.close()


def fingerprint(message: Message) -> tuple[int, str, bool, bytes]:
    """A message with its payload as a digest, to compare a backlog without holding it."""
    return message.seq, message.topic, message.retain, hashlib.sha256(message.payload).digest()


def test_a_72_hour_outage_fits_the_default_budget_of_100_mb(tmp_path: Path) -> None:
    """24 units of 8 ports (a typhoon night), a snapshot per unit per minute with readings
    that vary, 4 events per unit per hour, 72 hours without uplink: nothing is pruned, the
    file (WAL included) stays within 100 MB and every message comes back as it was made."""
    budget = int(GatewayConfig.model_fields["outbox_max_mb"].default * MB)
    assert budget <= 100 * MB
    outbox = Outbox(tmp_path / "o.db", budget)
    rng = random.Random(72)
    units = range(1, 25)
    appended: list[tuple[int, str, bool, bytes]] = []
    for hour in range(72):  # one append per hour keeps the test fast; the gateway's are small
        entries: list[Entry] = []
        for minute in range(60):
            entries += [state_entry(u, hour * 60 + minute, rng=rng) for u in units]
            if minute % 15 == 0:
                entries += [event_entry(u, hour * 60 + minute) for u in units]
        appended += map(fingerprint, outbox.append(entries))
        assert outbox.size_bytes() <= budget
    assert len(appended) == 72 * 60 * len(units) + 72 * 4 * len(units) == 110_592
    assert outbox.pruned == 0
    assert outbox.over_budget_appends == 0
    read: list[tuple[int, str, bool, bytes]] = []
    while page := outbox.pending(after_seq=read[-1][0] if read else -1, limit=10_000):
        read += map(fingerprint, page)
    assert read == appended  # every one, in seq order, byte for byte
    assert outbox.size_bytes() <= budget
    outbox.close()


_CRASHER = """
import random, sys
from pathlib import Path
from gateway.outbox import Outbox
from tests.gateway.conftest import event_entry, state_entry

outbox = Outbox(Path(sys.argv[1]), 64 * 1024 * 1024)
rng = random.Random(int(sys.argv[2]))
n = 0
while True:
    if rng.random() < 0.1:
        print("R", *outbox.status_seqs(), flush=True)
        if rng.random() < 0.5:
            print("S", outbox.append_status(event_entry(1, n)).seq, flush=True)
    entries = [event_entry(1, n)] + [state_entry(u, n) for u in range(1, rng.randint(1, 4))]
    print("A", *[m.seq for m in outbox.append(entries)], flush=True)
    n += 1
"""


def _append_until_killed(path: Path, seed: int) -> tuple[list[int], list[int], list[int]]:
    """Run a producer, SIGKILL it after a random number of commits: the seqs appended, the
    status seqs reserved (births and wills, once each) and the births stored."""
    rng = random.Random(seed)
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASHER, str(path), str(seed)],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
    )
    assert child.stdout is not None
    lines: list[str] = []
    for _ in range(rng.randint(20, 300)):
        line = child.stdout.readline()
        assert line, "the producer died on its own"
        lines.append(line)
    child.send_signal(signal.SIGKILL)
    lines += child.stdout.read().splitlines()  # whatever it printed before the signal landed
    child.wait()
    printed: dict[str, list[int]] = {"A": [], "R": [], "S": []}
    for line in lines:
        kind, *numbers = line.split()
        values = [int(n) for n in numbers]
        if kind != "R" or values[0] not in printed["R"]:  # a pending pair is printed again
            printed[kind].extend(values)
    return printed["A"], printed["R"], printed["S"]


def test_sigkill_loses_nothing_acknowledged_and_never_reuses_a_seq(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    stored_before: set[int] = set()
    top = -1
    for round_ in range(3):
        seed = round_ * 7919 + random.randrange(999)
        appended, reserved, births = _append_until_killed(path, seed)
        printed = appended + reserved
        assert min(printed) > top, "a seq was reused after the crash"
        assert sorted(printed) == list(range(top + 1, top + 1 + len(printed)))
        outbox = Outbox(path, 64 * MB)
        stored = set(seqs(all_pending(outbox)))
        assert set(appended) | set(births) <= stored, "a committed append was lost"
        assert stored_before <= stored
        last = reserved[-2:]  # its birth may be stored with its "S" unprinted
        assert not (set(reserved) - set(births) - set(last[:1])) & stored, "a will's seq stored"
        birth, will = outbox.status_seqs()  # a pending pair survives the crash, or a new one
        if last and last[0] not in stored:
            assert [birth, will] == last
        else:
            assert birth > max(printed)
        outbox.append_status(event_entry(1))
        top = outbox.next_seq - 1
        outbox.close()
        stored_before = stored | {birth}


class OutboxMachine(RuleBasedStateMachine):
    """Random appends, acks, reserves and reopens under a budget small enough to prune."""

    BUDGET = 64 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="outbox-"))
        self.outbox = Outbox(self.dir / "o.db", self.BUDGET)
        self.issued = -1
        self.acked: set[int] = set()
        self.events: set[int] = set()
        self.key_of: dict[int, str] = {}  # snapshot seq -> key
        self.newest: dict[str, int] = {}
        self.reserved: tuple[int, int] | None = None

    @rule(batch=st.lists(st.tuples(st.booleans(), st.integers(1, 3)), min_size=1, max_size=25))
    def append(self, batch: list[tuple[bool, int]]) -> None:
        entries = [state_entry(u) if is_state else event_entry(u) for is_state, u in batch]
        messages = self.outbox.append(entries)
        assert seqs(messages) == list(range(self.issued + 1, self.issued + 1 + len(entries)))
        self.issued += len(entries)
        for entry, message in zip(entries, messages, strict=True):
            assert json.loads(message.payload)["seq"] == message.seq
            if entry.supersedes is None:
                self.events.add(message.seq)
            else:
                self.key_of[message.seq] = entry.supersedes
                self.newest[entry.supersedes] = message.seq

    @rule()
    def reserve(self) -> None:
        """The birth/will pair: reserved once, the same until the birth is stored."""
        pair = self.outbox.status_seqs()
        if self.reserved is None:
            assert pair == (self.issued + 1, self.issued + 2)
            self.issued += 2
            self.reserved = pair
        assert pair == self.reserved

    @precondition(lambda self: self.reserved is not None)
    @rule()
    def store_birth(self) -> None:
        assert self.reserved is not None
        message = self.outbox.append_status(event_entry(1))
        assert message.seq == self.reserved[0]
        self.events.add(message.seq)
        self.reserved = None

    @precondition(lambda self: self.issued >= 0)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        present = seqs(all_pending(self.outbox))
        chosen = data.draw(st.lists(st.sampled_from([*present, self.issued]), max_size=40))
        self.outbox.ack(chosen)
        self.acked.update(chosen)

    @rule()
    def reopen(self) -> None:
        self.outbox.close()
        self.outbox = Outbox(self.dir / "o.db", self.BUDGET)

    @invariant()
    def nothing_but_superseded_snapshots_is_lost(self) -> None:
        present = seqs(all_pending(self.outbox))
        assert present == sorted(set(present))
        assert self.outbox.backlog() == len(present)
        assert not set(present) & self.acked
        assert all(s <= self.issued for s in present)
        assert self.events - self.acked <= set(present)
        assert set(self.newest.values()) - self.acked <= set(present)
        for lost in set(self.key_of) - self.acked - set(present):
            assert self.newest[self.key_of[lost]] > lost, "dropped a snapshot nothing replaced"

    def teardown(self) -> None:
        self.outbox.close()
        shutil.rmtree(self.dir, ignore_errors=True)


OutboxMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
test_outbox_invariants = OutboxMachine.TestCase


def test_with_receipts_a_broker_ack_keeps_the_row_until_the_server_confirms(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "o.db", MB, receipts=True)
    outbox.append([event_entry(1, n) for n in range(6)])
    outbox.ack([0, 1, 2, 3], at=100.0)
    outbox.ack([4], at=200.0)
    assert seqs(all_pending(outbox)) == [5]  # delivered rows are not sent as new again
    assert (outbox.backlog(), outbox.unconfirmed()) == (1, 5)
    assert seqs(outbox.overdue(delivered_before=150.0)) == [0, 1, 2, 3]
    assert outbox.confirm([(1, 2), (5, 9)]) == 3  # 5 confirmed before its PUBACK was marked
    assert seqs(outbox.overdue(delivered_before=1e12)) == [0, 3, 4]
    outbox.close()
    outbox = Outbox(tmp_path / "o.db", MB, receipts=True)  # delivery marks survive a restart
    assert (outbox.backlog(), outbox.unconfirmed()) == (0, 3)
    outbox.close()


def test_an_outbox_file_from_before_compression_is_read_as_it_was(tmp_path: Path) -> None:
    """Rows stored as plain JSON by the previous version come back byte for byte beside
    new, compressed ones, as new messages, replays and resends alike."""
    path = tmp_path / "o.db"
    outbox = Outbox(path, MB, receipts=True)
    outbox.close()
    old_rows = [
        (0, "t/state", state_entry(1, rng=random.Random(0)).message, 1, "t/state"),
        (1, "t/event", event_entry(1).message, 0, None),
        (2, "t/event", event_entry(2).message, 0, None),
    ]
    old = sqlite3.connect(path)
    old.executemany(
        "INSERT INTO outbox VALUES (?, ?, ?, ?, ?, NULL)",
        [(seq, topic, m.model_copy(update={"seq": seq}).model_dump_json().encode(), retain, key)
         for seq, topic, m, retain, key in old_rows],
    )  # fmt: skip
    old.execute("UPDATE meta SET value = 3 WHERE key = 'next_seq'")
    old.commit()
    old_payloads = [row[0] for row in old.execute("SELECT payload FROM outbox ORDER BY seq")]
    old.close()

    outbox = Outbox(path, MB, receipts=True)
    [new] = outbox.append([state_entry(2, rng=random.Random(1))])
    pending = all_pending(outbox)
    assert [m.payload for m in pending] == [*old_payloads, new.payload]
    assert [(m.seq, m.topic, m.retain) for m in pending] == [
        (0, "t/state", True), (1, "t/event", False), (2, "t/event", False), (3, new.topic, True)
    ]  # fmt: skip
    assert json.loads(as_historical(pending[0]).payload)["historical"] is True
    outbox.ack([0, 1, 3], at=100.0)
    assert [m.payload for m in outbox.overdue(1e12)] == [*old_payloads[:2], new.payload]
    outbox.close()
    stored = sqlite3.connect(path)
    (new_row,) = stored.execute("SELECT payload FROM outbox WHERE seq = 3").fetchone()
    stored.close()
    assert len(new_row) < len(new.payload) / 5  # the new row is stored compressed


def test_an_outbox_file_from_before_receipts_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT"
        " NULL, retain INTEGER NOT NULL, supersedes TEXT);"
        "INSERT INTO outbox VALUES (7, 't', x'7b7d', 0, NULL);"
        "INSERT INTO meta VALUES ('next_seq', 8);"
    )
    old.close()
    outbox = Outbox(path, MB, receipts=True)
    assert seqs(all_pending(outbox)) == [7]
    assert outbox.status_seqs() == (8, 9)
    outbox.close()
