"""The server's tables (SQLAlchemy 2, typed). Rows stay in the shells; the core sees our types.

Invariants the database itself enforces, so that no code path can break them:
- one active booking per resident (partial unique index);
- one active booking per port per window (partial unique index), so two processes can
  never hand out the same port twice;
- one unresolved incident per dedupe key (partial unique index);
- a gateway message is applied once: (gw_id, seq) is a primary key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, also on SQLite (which stores naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: chargenet stores UTC only")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


ACTIVE_BOOKING = text("status IN ('active', 'checked_in')")
OPEN_INCIDENT = text("state != 'resolved'")
UNDELIVERED = text("delivered_at IS NULL")
UNSENT = text("state = 'pending'")
MULTICAST = text("recipients IS NOT NULL")


class Gateway(Base):
    __tablename__ = "gateways"

    gw_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="offline")
    """online / offline, from the retained status and its Last Will."""
    boot_id: Mapped[str | None] = mapped_column(String(64))
    seq_run: Mapped[str | None] = mapped_column(String(64))
    """The run of seqs followed (`GatewayStatus.seq_run`): another one means seq restarted."""
    retired_seq_runs: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Earlier runs, newest last: their statuses are history, whatever their seq."""
    version: Mapped[str | None] = mapped_column(String(32))
    status_seq: Mapped[int] = mapped_column(BigInteger, default=-1)
    status_ts: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    """Server receipt time of the gateway's latest message of any kind."""
    max_seq: Mapped[int] = mapped_column(BigInteger, default=-1)
    silent: Mapped[bool] = mapped_column(Boolean, default=False)
    """No message for 3 report periods: effectively offline until the next one arrives."""
    clock_skew_s: Mapped[float | None]
    """How far the gateway's clock runs ahead (+) or behind (-) the server's: its newest
    message's `ts` less its receipt (a shelter box without NTP drifts)."""


class Drill(Base):
    """A drill (訓練): a simulator scenario played on twin stations of chosen municipalities.

    Its gateway (`gw_id`, `drill-{id}`) serves the scenario's batteries, mapped onto twins of
    the municipalities' stations (`Station.drill_id`): everything the drill causes happens
    there, apart from the real stations, and names them as 訓練 / DRILL.
    """

    __tablename__ = "drills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    scenario: Mapped[str] = mapped_column(String(200))
    municipalities: Mapped[list[str]] = mapped_column(JSON, default=list)
    gw_id: Mapped[str] = mapped_column(String(64), unique=True)
    started_at: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(100))
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(100))


class Station(Base):
    __tablename__ = "stations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_ja: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    name_kana: Mapped[str] = mapped_column(String(200), default="")
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(300), default="")
    municipality: Mapped[str] = mapped_column(String(100), default="")
    counterpart_group: Mapped[str | None] = mapped_column(String(100))
    opens_at: Mapped[str | None] = mapped_column(String(5))
    """"HH:MM" local time; None with closes_at None means open around the clock."""
    closes_at: Mapped[str | None] = mapped_column(String(5))
    slot_minutes: Mapped[int] = mapped_column(Integer, default=30)
    drill_id: Mapped[int | None] = mapped_column(ForeignKey("drills.id"), index=True)
    """Set on a drill's twin of a real station: seen only by the drill's participants and
    operators, and only while the drill runs."""


class Unit(Base):
    """A battery, known by (gateway, `bus.unit_id`); mapped to a station by the registry."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("gw_id", "unit"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gw_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(80))
    station_id: Mapped[str | None] = mapped_column(ForeignKey("stations.id"), index=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    """As the gateway reported it; staleness and the gateway's status are applied on top."""
    state_seq: Mapped[int] = mapped_column(BigInteger, default=-1)
    state_ts: Mapped[datetime | None]
    """When the newest state was measured."""
    received_at: Mapped[datetime | None]
    soc_pct: Mapped[float | None] = mapped_column(Float)
    soh_pct: Mapped[float | None] = mapped_column(Float)
    voltage_v: Mapped[float | None] = mapped_column(Float)
    current_a: Mapped[float | None] = mapped_column(Float)
    power_w: Mapped[float | None] = mapped_column(Float)
    temp_c: Mapped[float | None] = mapped_column(Float)
    rated_wh: Mapped[float | None] = mapped_column(Float)
    battery_state: Mapped[str | None] = mapped_column(String(32))
    alarms: Mapped[list[str]] = mapped_column(JSON, default=list)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    """No state for 3 report periods: effectively offline until the next state arrives."""


class Port(Base):
    __tablename__ = "ports"
    __table_args__ = (UniqueConstraint("unit_pk", "port"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit_pk: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    port: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="available")
    """As reported (available / charging / finishing / unavailable / faulted)."""
    occupied: Mapped[bool | None] = mapped_column(Boolean)
    enabled: Mapped[bool | None] = mapped_column(Boolean)
    power_w: Mapped[float | None] = mapped_column(Float)
    energy_wh: Mapped[float | None] = mapped_column(Float)
    temp_c: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str] = mapped_column(String(32), default="none")
    vendor_code: Mapped[int | None] = mapped_column(Integer)
    display_code: Mapped[str | None] = mapped_column(String(16))
    session_s: Mapped[int | None] = mapped_column(Integer)
    admin_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    """An operator took the port out of service; it is not booked while set."""


class SeenMessage(Base):
    """Idempotency: a (gateway, seq) is applied once, whatever replays or duplicates."""

    __tablename__ = "seen_messages"

    gw_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    """For the retention sweep (`ingest.retention`)."""


class PendingChanges(Base):
    """A committed ChangeSet not every listener has seen yet (`ingest.journal`)."""

    __tablename__ = "pending_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    """The server process that delivers it (its MQTT client id)."""
    body: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(index=True)


class SeqGap(Base):
    """Seqs a gateway skipped: lost on its side or still to be replayed."""

    __tablename__ = "seq_gaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gw_id: Mapped[str] = mapped_column(String(64), index=True)
    first_missing: Mapped[int] = mapped_column(BigInteger)
    last_missing: Mapped[int] = mapped_column(BigInteger)
    detected_at: Mapped[datetime]


class UnitEventRow(Base):
    __tablename__ = "unit_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gw_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(32))
    port: Mapped[int | None] = mapped_column(Integer)
    alarm: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(500))
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime]
    historical: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime]


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        Index(
            "uq_bookings_active_resident", "resident_id", unique=True,
            sqlite_where=ACTIVE_BOOKING, postgresql_where=ACTIVE_BOOKING,
        ),
        Index(
            "uq_bookings_active_port_window", "unit_pk", "port", "window_start", unique=True,
            sqlite_where=ACTIVE_BOOKING, postgresql_where=ACTIVE_BOOKING,
        ),
        Index("ix_bookings_station_window", "station_id", "window_start"),
        Index("ix_bookings_held_since", "held_since"),
        Index("ix_bookings_released_window", "released_for", "window_start"),
    )  # fmt: skip

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    resident_id: Mapped[str] = mapped_column(String(100))
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    window_start: Mapped[datetime]
    unit_pk: Mapped[int] = mapped_column(ForeignKey("units.id"))
    port: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active / checked_in / completed / cancelled / no_show / moved."""
    ticket_code: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    moved_from_id: Mapped[str | None] = mapped_column(String(32))
    held_since: Mapped[datetime | None]
    """Its port is out of sight (gateway offline, battery silent or stale) and the booking is
    held there, since a relocation first found it so; None while the port is seen."""
    released_for: Mapped[str | None] = mapped_column(String(32))
    """Why relocation moved or cancelled it (`port_faulted`, `port_offline` ...); a booking
    cancelled for `port_offline` is restored if its station comes back in time."""
    reminded_at: Mapped[datetime | None]
    """When its resident was reminded (a `reminder` notification); once per booking."""
    walk_m: Mapped[int | None] = mapped_column(Integer)
    """Walking metres from where the resident asked (the ranking's model) when it was booked
    from a location; None without one, and for a booking the system moved (the resident's
    location is never kept)."""
    priority: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Booked by a priority resident (`PriorityResident`): it uses the window's held-back
    places first (`server.booking.holdback`), and is moved first on a fault."""


class WindowLoad(Base):
    """Active bookings per station window, kept in the booking transaction.

    Booking increments it with a conditional UPDATE (`booked < capacity`), which both
    PostgreSQL and SQLite serialise per row: the capacity check and the claim are one step.
    """

    __tablename__ = "window_loads"

    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    booked: Mapped[int] = mapped_column(Integer, default=0)


class Notification(Base):
    """A domain event someone must hear about (a moved booking, a cancelled slot ...).

    Written in the transaction of the change it reports. `server.line.notices` turns those of
    LINE residents into outbox messages, setting `delivered_at` in the same transaction, so
    each is handed to the outbox exactly once; others stay visible in the API.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index(
            "ix_notifications_undelivered", "resident_id",
            sqlite_where=UNDELIVERED, postgresql_where=UNDELIVERED,
        ),
    )  # fmt: skip
    """The LINE notices' queue (`server.line.notices`): only what is still to be told."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    resident_id: Mapped[str] = mapped_column(String(100), index=True)
    booking_id: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index(
            "uq_incidents_open_key", "dedupe_key", unique=True,
            sqlite_where=OPEN_INCIDENT, postgresql_where=OPEN_INCIDENT,
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    """port_fault / battery_alarm / low_battery / battery_silent / gateway_offline /
    depletion_forecast."""
    dedupe_key: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    state: Mapped[str] = mapped_column(String(16), default="open")
    """open -> acknowledged -> resolved."""
    station_id: Mapped[str | None] = mapped_column(String(64), index=True)
    gw_id: Mapped[str | None] = mapped_column(String(64))
    unit: Mapped[str | None] = mapped_column(String(80))
    port: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    opened_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    condition_cleared_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    escalated_at: Mapped[datetime | None]
    drill_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """The drill whose station or gateway it is about; None for a real one."""
    paged_at: Mapped[datetime | None]
    """When its alert went to the crews' outbox; None while a brief blip is waited out (a
    kind's page delay) and for incidents that resolved before anyone was paged."""


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CommandRow(Base):
    """A command sent to a gateway and, once it answers, its result."""

    __tablename__ = "commands"

    cmd_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gw_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(32))
    port: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    sends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Times published: the first send and the resends of `commands.resend_unanswered`."""
    ok: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(String(500))
    answered_at: Mapped[datetime | None]


class OutboxMessage(Base):
    """A message to a person on LINE or LINE WORKS, written in the transaction of the change
    that caused it and deleted from nobody's view until it is sent (`server.delivery`).

    `state`: pending -> sent, or failed (the platform refused it for good, a 4xx other than
    429). A sender claims a row by setting `lease_until`; a row whose lease ran out (its
    sender died mid-send) is claimed again, and the platform's idempotency (the push retry
    key; a used reply token) keeps the person from getting it twice.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "state", "next_at"),
        Index(
            "ix_outbox_unsent_target", "platform", "target", "id",
            sqlite_where=UNSENT, postgresql_where=UNSENT,
        ),
        Index(
            "ix_outbox_multicast_source", "source",
            sqlite_where=MULTICAST, postgresql_where=MULTICAST,
        ),
    )  # fmt: skip
    """Due rows by time; a target's unsent rows by order (the sender sends a target's
    rows one after another, so each claim asks whether an earlier one is unsent); an
    announcement's multicast batches by their source (its delivery counts)."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    """`line` or `lineworks`."""
    target: Mapped[str] = mapped_column(String(200))
    """LINE: the user id. LINE WORKS: `channel:{channelId}` or `user:{userId}`."""
    body: Mapped[list[Any]] = mapped_column(JSON)
    """The platform's own message objects (LINE: at most 5; LINE WORKS: one content)."""
    reply_token: Mapped[str | None] = mapped_column(String(200))
    reply_until: Mapped[datetime | None]
    """The reply token is used until then; afterwards the message is pushed."""
    reply_tried: Mapped[bool] = mapped_column(Boolean, default=False)
    """A reply was attempted: if its outcome was never recorded, a second reply tells."""
    retry_key: Mapped[str] = mapped_column(String(36))
    """`X-Line-Retry-Key` of the push (a UUID kept with the row): a repeat is a 409."""
    source: Mapped[str] = mapped_column(String(200), default="")
    """What caused it (`notification:12`, `line_event:...`, `incident:4:opened`)."""
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    recipients: Mapped[list[str] | None] = mapped_column(JSON)
    """LINE multicast (an announcement's batch): the user ids, at most 500; `target` then
    names the batch (`multicast:...`). None for a message to one person. Emptied (`[]`, still
    a multicast) once the batch is sent or failed for good: no user id outlives its send."""
    recipient_count: Mapped[int | None] = mapped_column(Integer)
    """How many user ids the batch had: the delivery counts read this, not `recipients`."""


class LineEvent(Base):
    """A LINE webhook event, kept by `webhookEventId` so a redelivery is processed once.

    A location message is kept without its coordinates (a resident's location is used for
    ranking, never stored): if the server dies before processing it, the resident is asked
    for it again.
    """

    __tablename__ = "line_events"

    webhook_event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    redelivery: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    processed_at: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(100))
    """The process (its client id) that queued the event and answers for it."""
    leased_until: Mapped[datetime | None]
    """Renewed while that process lives: recovery takes only a dead process's events."""


class LineResident(Base):
    """A LINE user who follows the official account: language and where the chat stands.

    No name, no location: only what the conversation needs to continue.
    """

    __tablename__ = "line_residents"

    user_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), default="ja")
    language_chosen: Mapped[bool] = mapped_column(Boolean, default=False)
    """The resident asked for a language; their LINE setting no longer decides."""
    following: Mapped[bool] = mapped_column(Boolean, default=True)
    step: Mapped[str | None] = mapped_column(String(32))
    """The conversation's open question (`location`, ...), None when it waits for nothing."""
    step_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    drill_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    """The resident takes part in drills: only they see drill stations and hear of them."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class District(Base):
    """Registry data: a municipality's districts (地区), which residents register under.

    Set by an operator (`server.registry.districts`); `position` keeps the order given,
    which is the order residents are offered them in."""

    __tablename__ = "districts"

    municipality: Mapped[str] = mapped_column(String(100), primary_key=True)
    """As stations name it (`Station.municipality`)."""
    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    """At most 20 characters: LINE's quick-reply label."""
    position: Mapped[int] = mapped_column(Integer)


class ResidentRegistration(Base):
    """What a LINE resident registered, with consent: the minimum to reach their group.

    No name, no location, no link to their bookings; deleted (not flagged) when the
    resident asks (「登録削除」). Never public: no page, station view or open data reads it.
    """

    __tablename__ = "resident_registrations"

    user_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    """The LINE user id (the signed webhook's)."""
    municipality: Mapped[str] = mapped_column(String(100))
    district: Mapped[str | None] = mapped_column(String(20))
    """None when the municipality lists no districts."""
    stay: Mapped[str] = mapped_column(String(16))
    """`shelter`, `home`, `relatives` or `car`."""
    station_id: Mapped[str | None] = mapped_column(String(64), index=True)
    """The shelter's station, with `stay` = `shelter` only (its poster scanned, or chosen in
    the chat); None when the resident's shelter has no station. No foreign key: a station
    leaving the registry must not wait on residents' rows."""
    need_requested: Mapped[str | None] = mapped_column(String(32))
    """`medical_device` or `care` as the resident said: a request for priority, never a grant."""
    consented_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    reference: Mapped[str | None] = mapped_column(String(12), unique=True)
    """An opaque code the resident sees (「登録確認」) and shows at the desk, or gives the
    municipality for its list: how operators name a registration, never by LINE user id."""


class PriorityResident(Base):
    """A resident an operator granted priority (verified at the desk or from the
    municipality's list; a self-reported need is only a request). Deleted on revoke, and
    with the registration when the resident deletes it; the audit log keeps the history."""

    __tablename__ = "priority_residents"

    resident_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    """The booking service's resident id (`line:{user id}`)."""
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    """The registration's reference."""
    municipality: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16))
    """`desk` or `municipal_list`."""
    granted_by: Mapped[str] = mapped_column(String(100))
    granted_at: Mapped[datetime]


class PriorityRule(Base):
    """A municipality's hold-back for priority residents (`server.booking.holdback`)."""

    __tablename__ = "priority_rules"

    municipality: Mapped[str] = mapped_column(String(100), primary_key=True)
    hold_share: Mapped[float] = mapped_column(Float)
    release_before_min: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime]


class Announcement(Base):
    """An operator's announcement to residents (`server.announcements`): ja with en, for a
    municipality's districts, situations (`ResidentRegistration.stay`) or stations (the
    residents registered at their shelter, and their active bookings). Drafted (previewed),
    then sent once: its LINE multicast batches are outbox rows whose `source` is
    `announcement:{id}`; no user id is kept here."""

    __tablename__ = "announcements"
    __table_args__ = (Index("ix_announcements_municipality_sent", "municipality", "sent_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    municipality: Mapped[str] = mapped_column(String(100))
    districts: Mapped[list[str]] = mapped_column(JSON, default=list)
    stays: Mapped[list[str]] = mapped_column(JSON, default=list)
    stations: Mapped[list[str]] = mapped_column(JSON, default=list)
    text_ja: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    drill_id: Mapped[int | None] = mapped_column(ForeignKey("drills.id"))
    """A drill's announcement (訓練): only residents who opted in to drills hear it."""
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    sent_by: Mapped[str | None] = mapped_column(String(100))
    sent_at: Mapped[datetime | None]
    recipients: Mapped[int | None] = mapped_column(Integer)
    """How many residents it was sent to (a count; who they were is the outbox's)."""


class CrewRoute(Base):
    """Registry data: which LINE WORKS channel hears a municipality's, a counterpart group's
    and HQ's alerts (as in Ehime's hotline). Set by an operator (CSV and API)."""

    __tablename__ = "crew_routes"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    """`municipality`, `group` or `hq`."""
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    """The municipality or counterpart group as stations name it; empty for `hq`."""
    channel_id: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime]


class OperatorToken(Base):
    """An operator's account: their role, where they act, and their token's SHA-256 only.

    Rows are never deleted: a revoked account keeps its name, so the audit log's actor
    always names one account, and a name is never reused for someone else.
    """

    __tablename__ = "operators"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    """`hq`, `municipality` or `viewer` (`server.access.operators.Role`)."""
    municipality: Mapped[str | None] = mapped_column(String(100))
    """The one municipality the operator reaches; None: all of them."""
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class CapacityLoss(Base):
    """A station that lost capacity, and since when: its later bookings move once the loss
    has lasted `move_grace_s`. A row, not a process's memory, so the first process whose
    timer comes moves them, even when the process that heard of the loss is gone (with a
    shared ingest, no other process heard of it)."""

    __tablename__ = "capacity_losses"

    station_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    since: Mapped[datetime]
    leased_until: Mapped[datetime | None]
    """Set while a process moves the bookings (`server.booking.losses`)."""
