"""What crews are told on LINE WORKS, and in which channels: pure functions over plain data.

Routing follows Ehime's hotline: an incident at a station goes to its municipality's crew
channel, its counterpart group's channel and HQ, each channel once. Contents are Japanese
first with English beneath, times in the stations' zone, 24-hour. Alerts of one station
that become pageable together are one message per channel: a button each (acknowledge,
resolve) for up to `EACH_MAX` incidents, else "acknowledge all" / "resolve all" for the
incidents listed, `ALL_MAX` to a message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from server.lineworks.buttons import ACTIONS_MAX, Button, action, button_template

CONTENT_TEXT_MAX: Final = 1000
"""A `button_template`'s `contentText`."""
TEXT_MAX: Final = 2000
"""A text message."""
EACH_MAX: Final = ACTIONS_MAX // 2
"""Incidents of one message that get their own two buttons."""
ALL_MAX: Final = 8
"""Incidents of one "acknowledge all" message (its text must stay within 1,000 characters)."""
DETAIL_MAX: Final = 80
HEADLINE_MAX: Final = 150
"""A headline's line (a gateway may serve many stations)."""

KIND_NAMES: Final = {
    "port_fault": ("ポート故障", "port fault"),
    "battery_alarm": ("バッテリー警報", "battery alarm"),
    "low_battery": ("バッテリー残量低下", "low battery"),
    "battery_silent": ("バッテリー応答なし", "battery silent"),
    "gateway_offline": ("ゲートウェイ切断", "gateway offline"),
    "depletion_forecast": ("電池切れ予測", "depletion forecast"),
}
SEVERITY_MARKS: Final = {"critical": "🔴", "warning": "🟡"}


@dataclass(frozen=True, slots=True)
class StationRef:
    """A station as routing and messages see it."""

    id: str
    name_ja: str
    name_en: str
    municipality: str
    counterpart_group: str | None


@dataclass(frozen=True, slots=True)
class Routes:
    """The crew routes (registry data): channel ids by municipality and counterpart group."""

    municipality: Mapping[str, str]
    group: Mapping[str, str]
    hq: str | None


@dataclass(frozen=True, slots=True)
class Site:
    """Where a group of alerts is, as a headline names it."""

    name_ja: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Alert:
    """One incident as a message shows it."""

    id: int
    kind: str
    severity: str
    place: str | None
    """"battery 2 (rs485-1.2) port 3", as a crew finds it on site; None for a gateway."""
    detail: str
    opened_at: datetime
    resolved_at: datetime | None = None
    occurrences: int = 1


class Handled(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Result(StrEnum):
    """What a press did to one incident, as its presser is told."""

    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    ALREADY_ACKNOWLEDGED = "already_acknowledged"
    ALREADY_RESOLVED = "already_resolved"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Outcome:
    incident_id: int
    result: Result
    alert: Alert | None = None
    site: Site | None = None
    by: str | None = None
    """Who had acknowledged or resolved it already (for the ALREADY_ results)."""
    at: datetime | None = None


def channels_for(stations: Iterable[StationRef], routes: Routes, *, hq: bool = True) -> list[str]:
    """The channels of these stations' municipalities, then of their counterpart groups, then
    HQ's, each once (two scopes may share a channel)."""
    stations = list(stations)
    found = [routes.municipality.get(s.municipality) for s in stations]
    found += [routes.group.get(s.counterpart_group or "") for s in stations]
    if hq:
        found.append(routes.hq)
    return list(dict.fromkeys(channel for channel in found if channel))


def crew_channel(station: StationRef, routes: Routes) -> str | None:
    """The one channel a station's own crew reads: its municipality's, else its group's,
    else HQ's."""
    found = channels_for([station], routes)
    return found[0] if found else None


def site_of(stations: Sequence[StationRef], gw_id: str | None) -> Site:
    """The stations named in both languages; a gateway serving none is named itself."""
    if not stations:
        return Site(f"ゲートウェイ {gw_id}", f"gateway {gw_id}")
    return Site("、".join(s.name_ja for s in stations), ", ".join(s.name_en for s in stations))


def alert_contents(
    site: Site, alerts: Sequence[Alert], tz: ZoneInfo, escalated_after_min: int | None = None
) -> list[dict[str, Any]]:
    """The button messages paging these alerts (or escalating them, after that many minutes
    unacknowledged), in as few messages as the platform's limits allow."""
    if len(alerts) <= EACH_MAX:
        return [_alert_content(site, alerts, tz, escalated_after_min, each=True)]
    return [
        _alert_content(site, alerts[start : start + ALL_MAX], tz, escalated_after_min, each=False)
        for start in range(0, len(alerts), ALL_MAX)
    ]


def recovery_content(site: Site, alerts: Sequence[Alert], tz: ZoneInfo) -> dict[str, Any]:
    """The incidents resolved themselves (their condition stayed clear)."""
    lines = [f"✅ 復旧: {site.name_ja}", f"Recovered: {site.name_en}"]
    for alert in alerts:
        until = f"–{_hhmm(alert.resolved_at, tz)}" if alert.resolved_at else ""
        lines.append(f"#{alert.id} {_kind(alert)} {_where(alert)}({_when(alert.opened_at, tz)}"
                     f"{until})")  # fmt: skip
    return _text(lines)


def handled_content(
    site: Site, alerts: Sequence[Alert], handled: Handled, by: str
) -> dict[str, Any]:
    """Someone acknowledged or resolved these incidents (so others need not go)."""
    name = who(by)
    ids = " ".join(f"#{a.id}" for a in alerts)
    kinds = "、".join(dict.fromkeys(_names(a.kind)[0] for a in alerts))
    kinds_en = ", ".join(dict.fromkeys(_names(a.kind)[1] for a in alerts))
    if handled is Handled.ACKNOWLEDGED:
        lines = [f"👤 対応中({name}): {ids} {kinds} {site.name_ja}",
                 f"Acknowledged by {name}: {ids} {kinds_en}, {site.name_en}"]  # fmt: skip
    else:
        lines = [f"☑️ 解決({name}): {ids} {kinds} {site.name_ja}",
                 f"Resolved by {name}: {ids} {kinds_en}, {site.name_en}"]  # fmt: skip
    return _text(lines)


def press_reply(outcomes: Sequence[Outcome], tz: ZoneInfo) -> dict[str, Any]:
    """The answer to whoever pressed a button: what their press did, incident by incident."""
    lines = []
    for o in outcomes:
        what = f"#{o.incident_id}"
        if o.alert is not None and o.site is not None:
            kind_ja, kind_en = _names(o.alert.kind)
            what_ja, what_en = (
                f"{what} {kind_ja} {o.site.name_ja}",
                f"{what} {kind_en}, {o.site.name_en}",
            )
        else:
            what_ja = what_en = what
        name, at = who(o.by or ""), _hhmm(o.at, tz) if o.at else ""
        lines += {
            Result.ACKNOWLEDGED: [f"受付しました: {what_ja}", f"Acknowledged: {what_en}"],
            Result.RESOLVED: [f"解決を記録しました: {what_ja}", f"Resolved: {what_en}"],
            Result.ALREADY_ACKNOWLEDGED: [f"既に対応中です({name}): {what_ja}",
                                          f"Already acknowledged by {name}: {what_en}"],
            Result.ALREADY_RESOLVED: [f"既に解決済みです({name} {at}): {what_ja}",
                                      f"Already resolved by {name} at {at}: {what_en}"],
            Result.UNKNOWN: [f"{what} は見つかりません", f"Incident {what} is not known"],
        }[o.result]  # fmt: skip
    return _text(lines)


def unknown_button_reply() -> dict[str, Any]:
    """A press we cannot read (an old message, another bot's button): say so, kindly."""
    return _text([
        "このボタンは使えません。ダッシュボードで確認してください。",
        "This button is not recognised; please check the dashboard.",
    ])  # fmt: skip


def typed_message_reply() -> dict[str, Any]:
    """Someone wrote to the bot: it only understands its buttons."""
    return _text([
        "このボットはアラートのボタンで操作します(対応・解決)。",
        "This bot works by the buttons under its alerts (acknowledge, resolve).",
    ])  # fmt: skip


def held_content(site: Site, held: int, newly_held: int, move_at: datetime | None,
                 tz: ZoneInfo) -> dict[str, Any]:  # fmt: skip
    """Bookings are held at a station whose ports are out of sight (booking upkeep's
    `bookings_held` notification): the crew may restore the link before they move."""
    when_ja = f"{_hhmm(move_at, tz)}までに復旧しなければ他の場所へ移します。" if move_at else ""
    when_en = f" They move elsewhere at {_hhmm(move_at, tz)} unless seen again." if move_at else ""
    return _text([
        f"⏸ 予約保留: {site.name_ja} — ポートが見えないため {held} 件を保留中"
        f"(新規 {newly_held} 件)。{when_ja}",
        f"Bookings held at {site.name_en}: {held} ({newly_held} new), its ports are out of "
        f"sight.{when_en}",
    ])  # fmt: skip


def who(actor: str) -> str:
    """An actor as crews read it: a LINE WORKS user by their id, the rules as "auto"."""
    if actor == "system":
        return "自動 auto"
    return actor.removeprefix("lineworks:") or "?"


def _alert_content(
    site: Site, alerts: Sequence[Alert], tz: ZoneInfo, escalated_after_min: int | None,
    *, each: bool,
) -> dict[str, Any]:  # fmt: skip
    mark = SEVERITY_MARKS["critical" if any(a.severity == "critical" for a in alerts)
                          else "warning"]  # fmt: skip
    count_ja = f" {len(alerts)}件" if len(alerts) > 1 else ""
    count_en = f" ({len(alerts)})" if len(alerts) > 1 else ""
    if escalated_after_min is None:
        lines = [f"{mark} 障害{count_ja}: {site.name_ja}", f"Alert{count_en}: {site.name_en}"]
    else:
        lines = [f"⚠️ {escalated_after_min}分間未対応{count_ja}: {site.name_ja}",
                 f"Escalated, not acknowledged in {escalated_after_min} min{count_en}: "
                 f"{site.name_en}"]  # fmt: skip
    lines = [_cut(line, HEADLINE_MAX) for line in lines]
    numbered = len(alerts) > 1
    budget = (CONTENT_TEXT_MAX - sum(len(line) + 1 for line in lines)) // len(alerts) - 1
    for n, alert in enumerate(alerts, 1):
        index = f"[{n}] " if numbered else ""
        again = f" ×{alert.occurrences}" if alert.occurrences > 1 else ""
        block = "\n".join([
            f"{index}#{alert.id} {SEVERITY_MARKS.get(alert.severity, '')}{_kind(alert)}{again}",
            " · ".join(part for part in (alert.place, _cut(alert.detail, DETAIL_MAX)) if part),
            f"発生 opened {_when(alert.opened_at, tz)}",
        ])  # fmt: skip
        lines.append(_cut(block, budget))  # every incident a button acts on stays listed
    ids = [a.id for a in alerts]
    if not each:
        actions = [action("全て対応 Ack all", Button.ACK, ids),
                   action("全て解決 Resolve all", Button.RESOLVE, ids)]  # fmt: skip
    elif not numbered:
        actions = [action("対応する Acknowledge", Button.ACK, ids),
                   action("解決 Resolve", Button.RESOLVE, ids)]  # fmt: skip
    else:
        actions = [
            action(f"{label} [{n}]", button, [alert_id])
            for n, alert_id in enumerate(ids, 1)
            for label, button in (("対応 Ack", Button.ACK), ("解決 Resolve", Button.RESOLVE))
        ]
    return button_template(_fit(lines, CONTENT_TEXT_MAX), actions)


def _names(kind: str) -> tuple[str, str]:
    return KIND_NAMES.get(kind, (kind, kind))


def _kind(alert: Alert) -> str:
    kind_ja, kind_en = _names(alert.kind)
    return f"{kind_ja} / {kind_en}"


def _where(alert: Alert) -> str:
    return f"{alert.place} " if alert.place else ""


def _when(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local.month}/{local.day} {local:%H:%M}"


def _hhmm(at: datetime | None, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%H:%M") if at else ""


def _text(lines: Sequence[str]) -> dict[str, Any]:
    return {"type": "text", "text": _fit(lines, TEXT_MAX)}


def _fit(lines: Sequence[str], limit: int) -> str:
    """The lines joined, cut to the platform's limit."""
    return _cut("\n".join(lines), limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
