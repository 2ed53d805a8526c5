"""A gateway stopped by a signal says so: the retained status a newcomer sees is `offline`.

A clean disconnect drops the Last Will, so only the gateway's own offline status can tell
the server that a stopped gateway is gone; without it the server believes it live until
staleness.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from gateway.main import STOP_GRACE_S, cancel_and_wait
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.system.harness import Recorder, quiet_simulator, start_gateway

GW = "gw-test"
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signalled_gateway_leaves_a_retained_offline_status(
    signum: signal.Signals, tmp_path: Path, broker: Mosquitto
) -> None:
    sim = quiet_simulator(tmp_path)
    gateway = start_gateway(tmp_path, sim, broker.url, gw_id=GW)
    recorder = Recorder(broker.port, client_id="stop-recorder")
    try:
        birth = wait_until(
            lambda: next(
                (m.payload for m in recorder.messages(f"{GW}/status")
                 if m.payload.get("state") == "online"),
                None,
            ),
            30,
            "the gateway's birth",
        )  # fmt: skip
        asked = time.monotonic()
        gateway.process.send_signal(signum)
        code = gateway.process.wait(timeout=STOP_GRACE_S + 10)
        took_s = time.monotonic() - asked
        assert code == 0, gateway.log_text()  # 1 would mean the stop deadline ended it
        assert took_s < STOP_GRACE_S, took_s
    finally:
        recorder.close()
        gateway.stop()
        sim.stop()
    fresh = Recorder(broker.port, client_id="after-stop")
    try:
        status = wait_until(lambda: fresh.latest(f"{GW}/status"), 10, "the retained status")
    finally:
        fresh.close()
    assert status is not None and birth is not None
    assert status["state"] == "offline", status
    assert status["seq"] > birth["seq"]
    assert status["boot_id"] == birth["boot_id"]


def test_a_poll_that_swallows_its_cancellation_is_cancelled_again() -> None:
    """Python 3.11's `wait_for` returns a reply that arrives together with the cancellation
    (pymodbus awaits every reply so); the stop cancels again instead of waiting forever."""

    async def scenario() -> bool:
        reply: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def poll_forever() -> None:
            await asyncio.wait_for(reply, timeout=60)  # noqa: TID251 (as pymodbus does)
            await asyncio.sleep(60)  # the next poll's wait

        task = asyncio.create_task(poll_forever())
        await asyncio.sleep(0)
        reply.set_result(1)
        async with asyncio.timeout(5):
            await cancel_and_wait([task])
        return task.cancelled()

    assert asyncio.run(scenario())
