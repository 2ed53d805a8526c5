"""The MQTT ingest's one routing table: topic pattern -> payload model -> handler."""

from __future__ import annotations

from typing import Final

from protocol import topics
from protocol.payloads import CommandResult, GatewayStatus, UnitEvent, UnitState
from server.ingest import handlers
from server.ingest.router import Route, TopicRouter

MQTT_ROUTES: Final = TopicRouter(
    Route(topics.UNIT_STATE, UnitState, handlers.on_unit_state, deferrable=True),
    Route(topics.UNIT_EVENT, UnitEvent, handlers.on_unit_event),
    Route(topics.GATEWAY_STATUS, GatewayStatus, handlers.on_gateway_status),
    Route(topics.COMMAND_RESULT, CommandResult, handlers.on_command_result),
)
