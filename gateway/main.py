"""`chargenet gateway --config FILE.toml`: compose the small parts and run them.

Data path: pollers (one per bus) -> reporter (changes, events) -> outbox -> publisher.
Commands come back the other way: publisher -> command runner -> the unit's poller.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Final

from gateway.commands import CommandRunner
from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError
from gateway.health import BusView, GatewayView, HealthServer
from gateway.modbus_link import ModbusLink, quiet_pymodbus
from gateway.outbox import Outbox
from gateway.poller import BusPoller
from gateway.publisher import Publisher
from gateway.reports import Reporter
from gateway.watchdog import keep_alive, notify, watchdog_period_s
from protocol.topics import UnitAddress

log = logging.getLogger(__name__)

STOP_GRACE_S: Final = 15.0
"""A stop asked for by a signal ends the process within this, cleanly or not."""
PUBLISHER_STOP_S: Final = 10.0
"""For the offline status and the disconnect, within `STOP_GRACE_S` with time to close."""
RECANCEL_S: Final = 0.5


async def run_gateway(config: GatewayConfig, stop: asyncio.Event) -> None:
    """Run until `stop` is set, then say goodbye (retained offline) and close the outbox."""
    quiet_pymodbus()
    outbox = Outbox(
        config.store_path, int(config.outbox_max_mb * 1024 * 1024), receipts=config.mqtt.receipts
    )
    units = [UnitAddress(bus.name, unit_id) for bus in config.bus for unit_id in bus.units]
    publisher: Publisher | None = None
    reporter = Reporter(
        config.gateway_id,
        config.mqtt.prefix,
        units,
        outbox,
        notify=lambda: publisher.notify() if publisher else None,
        report_period_s=config.report_period_s,
        version=version("chargenet"),
        boot_id=os.urandom(16).hex(),
    )
    links = [ModbusLink(bus) for bus in config.bus]
    pollers = {
        bus.name: BusPoller(bus.name, bus.units, link, reporter, config.poll_period_s)
        for bus, link in zip(config.bus, links, strict=True)
    }
    commands = CommandRunner(pollers, reporter)
    publisher = Publisher(
        config.mqtt,
        config.client_id,
        config.gateway_id,
        outbox,
        birth=reporter.birth,
        snapshots=reporter.snapshots,
        on_command=commands.on_command,
        version=reporter.version,
        boot_id=reporter.boot_id,
    )
    log.info(
        "gateway %s: %d buses, %d units, outbox %s (%d pending)",
        config.gateway_id, len(pollers), len(units), config.store_path, outbox.backlog(),
    )  # fmt: skip
    producers = [asyncio.create_task(p.run(), name=f"bus {n}") for n, p in pollers.items()]
    producers.append(asyncio.create_task(_report(reporter), name="report"))
    sender = asyncio.create_task(publisher.run(), name="publisher")
    health = await _serve_health(config, pollers, publisher, outbox, reporter.version)
    watchdog = watchdog_period_s()
    if watchdog is not None:
        producers.append(asyncio.create_task(keep_alive(watchdog), name="watchdog"))
    notify("READY=1")
    try:
        await _until_stop_or_crash(stop, [*producers, sender])
    finally:
        notify("STOPPING=1")
        if health is not None:
            await health.stop()
        stopping = asyncio.create_task(cancel_and_wait(producers))
        # The publisher stops itself, which publishes the retained offline status and then
        # disconnects; cancelled instead, it would leave without a word (and a clean
        # disconnect drops the Last Will), so the server would believe us live.
        try:
            async with asyncio.timeout(PUBLISHER_STOP_S):
                await publisher.stop()
        except Exception as exc:
            log.warning("the publisher did not stop cleanly: %r", exc)
        await cancel_and_wait([sender])
        await stopping
        for link in links:
            link.close()
        outbox.close()


async def _serve_health(
    config: GatewayConfig,
    pollers: dict[str, BusPoller],
    publisher: Publisher,
    outbox: Outbox,
    version: str,
) -> HealthServer | None:
    """The health endpoint on `health_listen`, reading the parts at each request."""
    if config.health_listen is None:
        return None

    def view() -> GatewayView:
        now = time.monotonic()
        return GatewayView(
            gw_id=config.gateway_id, version=version, mqtt_connected=publisher.connected,
            mqtt=publisher.counters, outbox_messages=outbox.backlog(),
            outbox_unconfirmed=outbox.unconfirmed(), outbox_bytes=outbox.size_bytes(),
            outbox_budget_bytes=outbox.max_bytes, over_budget_appends=outbox.over_budget_appends,
            buses=[BusView(name, p.stats, p.busy_s,
                           None if p.last_ok is None else now - p.last_ok)
                   for name, p in pollers.items()],
            report_period_s=config.report_period_s, outbox_write_error=outbox.write_error,
            outbox_held=len(outbox.hold), outbox_write_failures=outbox.write_failures,
        )  # fmt: skip

    host, _, port = config.health_listen.rpartition(":")
    server = HealthServer(view)
    bound = await server.start(host, int(port))
    log.info("health endpoint on http://%s:%d/healthz and /metrics", host, bound)
    return server


async def _report(reporter: Reporter) -> None:
    """Publish each unit's state on its report deadline when no poll has (`Reporter.tick`)."""
    while True:
        await asyncio.sleep(reporter.wait_s())
        reporter.tick()


async def cancel_and_wait(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel `tasks` and wait for them, cancelling again any that swallowed it.

    Python 3.11's `asyncio.wait_for` returns the result instead of raising when the awaited
    reply arrives together with the cancellation (pymodbus awaits every reply so), and the
    poller would then poll on until the stop deadline killed the process.
    """
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_S)


async def _until_stop_or_crash(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Return on `stop`; re-raise if a part died, rather than limp on without it."""
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    for task in done:
        if task is not stopper and not task.cancelled() and task.exception():
            raise task.exception()  # type: ignore[misc]


def main(argv: list[str] | None = None) -> int:
    """Entry of `chargenet gateway`; 2 on a bad config, 0 on a clean stop."""
    parser = argparse.ArgumentParser(prog="chargenet gateway", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="gateway TOML file")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"chargenet gateway: bad config: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_serve(config))
    return 0


async def _serve(config: GatewayConfig) -> None:
    stop = asyncio.Event()

    def on_signal() -> None:
        if not stop.is_set():
            stop.set()
            arm_stop_deadline(STOP_GRACE_S)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await run_gateway(config, stop)


def arm_stop_deadline(seconds: float) -> None:
    """End the process after `seconds` if the clean stop has not finished by then.

    A stop must not hang on a part that ignores cancellation (a driver stuck on a dead
    serial line or socket): a supervisor would wait forever and never start a fresh
    gateway. Exiting hard is safe, since the outbox survives a kill. The timer thread is a
    daemon, so a clean stop that finishes first simply leaves it behind.
    """

    def expire() -> None:
        log.error("stop did not finish within %.0f s; exiting anyway", seconds)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
