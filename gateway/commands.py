"""Server->gateway commands: validated, turned into register writes, answered on cmd/result.

Turning a command into writes is pure (`command_writes`); the runner queues the writes on
the unit's bus ahead of its polls and reports the outcome. Every command gets a result,
a malformed one included when its `cmd_id` can be read, so the server is never left
guessing; a payload with no readable `cmd_id` is logged and counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Final

from pydantic import ValidationError

from gateway.discovery import UnitLayout
from gateway.errors import CommandFailed, GatewayError
from gateway.poller import BusPoller
from gateway.reports import Reporter
from protocol.payloads import Command, CommandAction
from protocol.sunspec import BATTERY, HEADER_LEN, encode_string
from protocol.vendor_model import DISPLAY_CODE_REGS, VENDOR

log = logging.getLogger(__name__)

RECENT_COMMANDS: Final = 1024
"""Command ids remembered, with their outcome, so a redelivery is not run twice.

QoS 1 is at least once, and the server sends an unanswered command again (same id) when
its result may have been lost: a redelivery of a finished command is answered again with
the same outcome; one still running is ignored (its result is on the way)."""


def command_writes(command: Command, layout: UnitLayout) -> list[tuple[int, list[int]]]:
    """The (address, registers) writes that carry out `command` on a unit with `layout`."""
    if command.action == CommandAction.RESET_ALARMS:
        span = layout.models[BATTERY.model_id]
        return [(span.address + HEADER_LEN + BATTERY.offset("AlmRst"), [1])]
    vendor = layout.models.get(VENDOR.model_id)
    if vendor is None:
        raise CommandFailed(command.cmd_id, "this battery has no chargenet vendor model")
    port = command.port or 0
    ports = VENDOR.repeats(vendor.length)
    if not 1 <= port <= ports:
        raise CommandFailed(command.cmd_id, f"port {port} does not exist (1..{ports})")
    base = vendor.address + HEADER_LEN
    if command.action == CommandAction.SET_DISPLAY:
        code = encode_string(command.value or "", DISPLAY_CODE_REGS)
        return [(base + VENDOR.offset("Code", port - 1), code)]
    enable = 1 if command.action == CommandAction.ENABLE_PORT else 0
    return [(base + VENDOR.offset("Ena", port - 1), [enable])]


class CommandRunner:
    """Receives raw command payloads from the publisher and answers each one."""

    def __init__(self, pollers: Mapping[str, BusPoller], reporter: Reporter) -> None:
        self._pollers = pollers
        self._reporter = reporter
        self._recent: OrderedDict[str, tuple[bool, str | None] | None] = OrderedDict()
        """cmd_id -> (ok, error) once done, None while running."""
        self._tasks: set[asyncio.Task[None]] = set()
        self.rejected = 0
        """Payloads that could not be answered at all (no readable cmd_id)."""

    async def on_command(self, payload: bytes) -> None:
        """Validate and queue; the write runs in the background so MQTT keeps flowing."""
        try:
            command = Command.model_validate_json(payload)
        except ValidationError as exc:
            self._reject(payload, exc)
            return
        if command.cmd_id in self._recent:
            outcome = self._recent[command.cmd_id]
            if outcome is None:
                log.info("command %s still running, ignoring the redelivery", command.cmd_id)
            else:
                log.info("command %s already done, answering the redelivery", command.cmd_id)
                self._reporter.on_command_result(command.cmd_id, *outcome)
            return
        self._recent[command.cmd_id] = None
        if len(self._recent) > RECENT_COMMANDS:
            self._recent.popitem(last=False)
        task = asyncio.create_task(self._run(command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, command: Command) -> None:
        unit = command.unit_address
        poller = self._pollers.get(unit.bus)
        try:
            if poller is None:
                raise CommandFailed(command.cmd_id, f"no bus named {unit.bus!r}")
            await poller.execute(unit.unit_id, lambda layout: command_writes(command, layout))
        except GatewayError as exc:
            log.warning(
                "command %s (%s on %s) failed: %s", command.cmd_id, command.action, unit, exc
            )
            self._answer(command.cmd_id, False, str(exc))
            return
        log.info("command %s (%s on %s) done", command.cmd_id, command.action, unit)
        self._answer(command.cmd_id, True, None)

    def _answer(self, cmd_id: str, ok: bool, error: str | None) -> None:
        if cmd_id in self._recent:
            self._recent[cmd_id] = (ok, error)
        self._reporter.on_command_result(cmd_id, ok, error)

    def _reject(self, payload: bytes, exc: ValidationError) -> None:
        why = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors()
        )
        cmd_id = _cmd_id_of(payload)
        if cmd_id is None:
            self.rejected += 1
            log.warning("malformed command ignored (no cmd_id): %s", why[:300])
            return
        log.warning("command %s rejected: %s", cmd_id, why[:300])
        self._reporter.on_command_result(cmd_id, False, f"invalid command: {why}"[:500])


def _cmd_id_of(payload: bytes) -> str | None:
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):  # deep nesting: pydantic refused it, json gives up
        return None
    cmd_id = data.get("cmd_id") if isinstance(data, dict) else None
    return cmd_id if isinstance(cmd_id, str) and 0 < len(cmd_id) <= 64 else None
