import logging
from datetime import UTC, datetime

import pytest

from protocol.payloads import GatewayStatus, UnitState
from protocol.topics import UnitAddress
from server.ingest.router import EnvelopeOnly, IngestCounters, TopicCache, complete
from server.ingest.routes import MQTT_ROUTES
from tests.server.ingest.messages import PREFIX, event, result, state, status

NOW = datetime(2026, 11, 24, 9, 0, 1, tzinfo=UTC)


def test_a_state_is_matched_validated_and_typed() -> None:
    counters = IngestCounters()
    topic, payload = state("gw-1", "rs485-1.3", seq=7)
    message = MQTT_ROUTES.route(PREFIX, topic, payload, NOW, counters)
    assert message is not None
    assert (message.gw_id, message.unit, message.seq) == ("gw-1", UnitAddress("rs485-1", 3), 7)
    assert isinstance(message.payload, UnitState)
    assert message.received_at == NOW
    assert counters.routed == {"UnitState": 1}
    assert counters.received == 1


def test_every_kind_has_a_route() -> None:
    counters = IngestCounters()
    wires = [status("gw-1", 1), state("gw-1", "b.1", 2), event("gw-1", "b.1", 3, "event-0003"),
             result("gw-1", 4, "cmd-1")]  # fmt: skip
    routed = [MQTT_ROUTES.route(PREFIX, t, p, NOW, counters) for t, p in wires]
    assert all(m is not None for m in routed)
    assert isinstance(routed[0] and routed[0].payload, GatewayStatus)
    assert set(counters.routed) == {"GatewayStatus", "UnitState", "UnitEvent", "CommandResult"}


def test_unknown_topics_and_bad_payloads_are_counted_never_raised() -> None:
    counters = IngestCounters()
    topic, _ = state("gw-1", "b.1", 1)
    bad = [
        ("elsewhere/gw/gw-1/status", b"{}"),
        (f"{PREFIX}/gw/gw-1/unit/b.01/state", b"{}"),  # leading zero: not a unit topic
        (f"{PREFIX}/gw/gw-1/nonsense", b"{}"),
    ]
    for t, p in bad:
        assert MQTT_ROUTES.route(PREFIX, t, p, NOW, counters) is None
    for payload in (b"", b"not json", b'{"seq": -1}', b"\xff\xfe", b'{"seq": 1, "extra": 2}'):
        assert MQTT_ROUTES.route(PREFIX, topic, payload, NOW, counters) is None
    assert (counters.unknown_topic, counters.malformed, counters.received) == (3, 5, 8)
    assert not counters.routed


def test_malformed_payloads_are_logged_without_their_content(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counters = IngestCounters()
    topic, _ = status("gw-1", 1)
    with caplog.at_level(logging.WARNING):
        MQTT_ROUTES.route(PREFIX, topic, b'{"password": "hunter2-secret"}', NOW, counters)
    assert counters.malformed == 1
    assert "hunter2" not in caplog.text
    assert "GatewayStatus" in caplog.text


def test_subscriptions_cover_gateway_topics_and_can_be_shared() -> None:
    filters = MQTT_ROUTES.subscriptions(PREFIX)
    assert f"{PREFIX}/gw/+/unit/+/state" in filters
    assert f"{PREFIX}/gw/+/cmd/result" in filters
    assert f"{PREFIX}/gw/+/cmd" not in filters  # our own commands are not ingested
    shared = MQTT_ROUTES.subscriptions(PREFIX, "ingest")
    assert shared == [f"$share/ingest/{f}" for f in filters]


def test_a_topic_cache_changes_no_outcome_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("server.ingest.router.TOPIC_CACHE_MAX", 2)
    plain, cached = IngestCounters(), IngestCounters()
    cache: TopicCache = {}
    good_topic, good = state("gw-1", "b.1", 1)
    wires = [(good_topic, good), ("chargenet/v1/gw/gw-1/nonsense", good),
             (good_topic, b'{"seq": 2}'), state("gw-2", "b.1", 3), (good_topic, good)]  # fmt: skip
    for topic, payload in wires:
        expected = MQTT_ROUTES.route(PREFIX, topic, payload, NOW, plain)
        got = MQTT_ROUTES.route(PREFIX, topic, payload, NOW, cached, cache)
        assert got == expected
        assert len(cache) <= 2
    assert cached == plain
    assert (cached.unknown_topic, cached.malformed, cached.routed["UnitState"]) == (1, 1, 3)


def test_a_deferred_state_has_its_envelope_checked_now_and_the_rest_on_completion() -> None:
    counters = IngestCounters()
    topic, payload = state("gw-1", "b.1", 7)
    message = MQTT_ROUTES.route(PREFIX, topic, payload, NOW, counters, defer=True)
    assert message is not None and isinstance(message.payload, EnvelopeOnly)
    assert message.seq == 7
    whole = complete(message, counters)
    assert whole is not None and isinstance(whole.payload, UnitState) and whole.raw is None
    assert complete(whole, counters) is whole
    assert MQTT_ROUTES.route(PREFIX, topic, b'{"seq": 1, "ports": 3}', NOW, counters,
                             defer=True) is None  # fmt: skip
    assert counters.malformed == 1
    bad = MQTT_ROUTES.route(PREFIX, topic, payload.replace(b'"ports":[', b'"ports":[1,'), NOW,
                            counters, defer=True)  # fmt: skip
    assert bad is not None and complete(bad, counters) is None
    assert counters.malformed == 2
    status_topic, status_payload = status("gw-1", 1)
    routed = MQTT_ROUTES.route(PREFIX, status_topic, status_payload, NOW, counters, defer=True)
    assert routed is not None and isinstance(routed.payload, GatewayStatus)  # never deferred
