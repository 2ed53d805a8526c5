"""The pure core: which channels hear an incident, and what the messages say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sandbox.lineworks.validation import problems
from server.lineworks import alerts
from server.lineworks.alerts import Alert, Handled, Outcome, Result, Routes, Site, StationRef
from server.lineworks.buttons import ACTIONS_MAX, LABEL_MAX, POSTBACK_MAX, Button, decode

TZ = ZoneInfo("Asia/Tokyo")
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 18:00 in Tokyo
OZU = StationRef("ozu-01", "大洲小学校", "Ozu Elementary", "大洲市", "南予")
UCHIKO = StationRef("uchiko-01", "内子中学校", "Uchiko Junior High", "内子町", "南予")
SITE = alerts.site_of([OZU], "demo-gw")
ROUTES = Routes({"大洲市": "ch-ozu", "内子町": "ch-uchiko"}, {"南予": "ch-nanyo"}, "ch-hq")


def alert(n: int, *, detail: str = "port 3 faulted: over_current", **changes: object) -> Alert:
    fields: dict[str, object] = {
        "id": n, "kind": "port_fault", "severity": "critical",
        "place": f"battery 2 (rs485-1.2) port {n}", "detail": detail, "opened_at": T0,
    }  # fmt: skip
    return Alert(**{**fields, **changes})  # type: ignore[arg-type]


def test_channels_municipality_then_group_then_hq_each_once() -> None:
    assert alerts.channels_for([OZU], ROUTES) == ["ch-ozu", "ch-nanyo", "ch-hq"]
    assert alerts.channels_for([OZU, UCHIKO], ROUTES) == [
        "ch-ozu", "ch-uchiko", "ch-nanyo", "ch-hq",
    ]  # fmt: skip
    shared = Routes({"大洲市": "ch-all"}, {"南予": "ch-all"}, "ch-all")
    assert alerts.channels_for([OZU], shared) == ["ch-all"]
    assert alerts.channels_for([OZU], ROUTES, hq=False) == ["ch-ozu", "ch-nanyo"]


def test_channels_skip_what_has_no_route() -> None:
    assert alerts.channels_for([OZU], Routes({}, {}, "ch-hq")) == ["ch-hq"]
    assert alerts.channels_for([OZU], Routes({}, {}, None)) == []
    assert alerts.channels_for([], ROUTES) == ["ch-hq"]  # a gateway serving no station
    no_group = StationRef("x", "x", "x", "松山市", None)
    assert alerts.channels_for([no_group], ROUTES) == ["ch-hq"]
    assert alerts.crew_channel(no_group, Routes({}, {"南予": "ch-nanyo"}, None)) is None
    assert alerts.crew_channel(OZU, Routes({}, {"南予": "ch-nanyo"}, "ch-hq")) == "ch-nanyo"


def test_one_alert_is_one_message_japanese_first_with_two_buttons() -> None:
    [content] = alerts.alert_contents(SITE, [alert(42)], TZ)
    assert content["type"] == "button_template"
    text = content["contentText"]
    assert text.index("大洲小学校") < text.index("Ozu Elementary")
    assert "ポート故障 / port fault" in text
    assert "battery 2 (rs485-1.2) port 42 · port 3 faulted: over_current" in text
    assert "発生 opened 11/24 18:00" in text  # Tokyo, 24-hour
    assert [(a["label"], a["postback"]) for a in content["actions"]] == [
        ("対応する Acknowledge", "ack:42"), ("解決 Resolve", "resolve:42"),
    ]  # fmt: skip


def test_times_are_local_and_24_hour() -> None:
    afternoon = datetime(2026, 11, 24, 4, 30, tzinfo=UTC)  # 13:30 in Tokyo
    [content] = alerts.alert_contents(SITE, [alert(1, opened_at=afternoon)], TZ)
    assert "11/24 13:30" in content["contentText"]
    done = alert(1, resolved_at=afternoon + timedelta(minutes=12))
    assert "(11/24 18:00–13:42)" in alerts.recovery_content(SITE, [done], TZ)["text"]


def test_several_alerts_of_a_station_get_a_button_pair_each() -> None:
    [content] = alerts.alert_contents(SITE, [alert(n) for n in (7, 8, 9)], TZ)
    assert "障害 3件" in content["contentText"]
    assert "[3] #9" in content["contentText"]
    pressed = [decode(a["postback"]) for a in content["actions"]]
    assert [(p.button, p.incident_ids) for p in pressed if p] == [
        (Button.ACK, (7,)), (Button.RESOLVE, (7,)), (Button.ACK, (8,)), (Button.RESOLVE, (8,)),
        (Button.ACK, (9,)), (Button.RESOLVE, (9,)),
    ]  # fmt: skip
    assert content["actions"][4]["label"] == "対応 Ack [3]"


@pytest.mark.parametrize("count", [6, 8, 9, 30])
def test_many_alerts_get_all_buttons_within_every_limit(count: int) -> None:
    many = [alert(2_000_000_000 + n, detail="x" * 500, kind="battery_alarm") for n in range(count)]
    contents = alerts.alert_contents(SITE, many, TZ)
    assert len(contents) == -(-count // alerts.ALL_MAX)
    listed: list[int] = []
    for content in contents:
        assert len(content["contentText"]) <= alerts.CONTENT_TEXT_MAX
        assert len(content["actions"]) <= ACTIONS_MAX
        assert all(len(a["label"]) <= LABEL_MAX for a in content["actions"])
        assert all(len(a["postback"]) <= POSTBACK_MAX for a in content["actions"])
        ack, resolve = (decode(a["postback"]) for a in content["actions"])
        assert ack is not None and resolve is not None
        assert ack.incident_ids == resolve.incident_ids
        assert (ack.button, resolve.button) == (Button.ACK, Button.RESOLVE)
        assert all(f"#{i}" in content["contentText"] for i in ack.incident_ids)
        listed += ack.incident_ids
    assert listed == [a.id for a in many]


def test_escalation_says_how_long_it_waited() -> None:
    [content] = alerts.alert_contents(SITE, [alert(42)], TZ, escalated_after_min=15)
    assert content["contentText"].startswith("⚠️ 15分間未対応: 大洲小学校\nEscalated, not "
                                             "acknowledged in 15 min: Ozu Elementary")  # fmt: skip
    assert len(content["actions"]) == 2


def test_a_gateway_serving_no_station_is_named_itself() -> None:
    assert alerts.site_of([], "gw-9") == Site("ゲートウェイ gw-9", "gateway gw-9")
    assert alerts.site_of([OZU, UCHIKO], "gw-9").name_en == "Ozu Elementary, Uchiko Junior High"


def test_notices_name_who_handled_it() -> None:
    acked = alerts.handled_content(SITE, [alert(4), alert(5)], Handled.ACKNOWLEDGED,
                                   "lineworks:tanaka")  # fmt: skip
    assert acked["text"].splitlines() == [
        "👤 対応中(tanaka): #4 #5 ポート故障 大洲小学校",
        "Acknowledged by tanaka: #4 #5 port fault, Ozu Elementary",
    ]
    resolved = alerts.handled_content(SITE, [alert(4)], Handled.RESOLVED, "admin")
    assert resolved["text"].startswith("☑️ 解決(admin): #4")


def test_press_reply_tells_each_outcome() -> None:
    at = T0 + timedelta(minutes=5)
    reply = alerts.press_reply([
        Outcome(1, Result.ACKNOWLEDGED, alert(1), SITE),
        Outcome(2, Result.ALREADY_RESOLVED, alert(2), SITE, "lineworks:sato", at),
        Outcome(3, Result.ALREADY_ACKNOWLEDGED, alert(3), SITE, "admin", at),
        Outcome(4, Result.UNKNOWN),
    ], TZ)["text"]  # fmt: skip
    assert reply.splitlines() == [
        "受付しました: #1 ポート故障 大洲小学校", "Acknowledged: #1 port fault, Ozu Elementary",
        "既に解決済みです(sato 18:05): #2 ポート故障 大洲小学校",
        "Already resolved by sato at 18:05: #2 port fault, Ozu Elementary",
        "既に対応中です(admin): #3 ポート故障 大洲小学校",
        "Already acknowledged by admin: #3 port fault, Ozu Elementary",
        "#4 は見つかりません", "Incident #4 is not known",
    ]  # fmt: skip


def test_held_bookings_notice() -> None:
    text = alerts.held_content(SITE, 3, 2, T0 + timedelta(hours=2), TZ)["text"]
    assert "予約保留: 大洲小学校" in text and "3 件を保留中(新規 2 件)" in text
    assert "20:00までに復旧しなければ" in text and "move elsewhere at 20:00" in text


def test_texts_never_exceed_the_platform_limit() -> None:
    many = [alert(n, kind="gateway_offline", place=None) for n in range(1, 200)]
    assert len(alerts.recovery_content(SITE, many, TZ)["text"]) <= alerts.TEXT_MAX


@pytest.mark.parametrize("count", [1, 3, 5, 6, 30])
def test_the_lineworks_sandbox_accepts_every_message(count: int) -> None:
    """Checked as the platform documents its bodies (the sandbox's validation)."""
    many = [alert(2_000_000_000 + n, detail="長い説明" * 100) for n in range(count)]
    wide = alerts.site_of([OZU] * 60, "gw-9")  # a gateway serving many stations
    outcomes = [Outcome(a.id, Result.ALREADY_RESOLVED, a, wide, "lineworks:" + "x" * 200, T0)
                for a in many]  # fmt: skip
    contents = [
        *alerts.alert_contents(wide, many, TZ),
        *alerts.alert_contents(wide, many, TZ, escalated_after_min=15),
        alerts.recovery_content(wide, many, TZ),
        alerts.handled_content(wide, many, Handled.ACKNOWLEDGED, "lineworks:" + "y" * 200),
        alerts.press_reply(outcomes, TZ),
        alerts.unknown_button_reply(),
        alerts.typed_message_reply(),
        alerts.held_content(wide, 300, 200, T0, TZ),
    ]
    assert [problems({"content": content}) for content in contents] == [[]] * len(contents)
