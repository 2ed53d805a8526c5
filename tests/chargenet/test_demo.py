import os
import signal
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chargenet import platforms
from chargenet.console import LiveView
from chargenet.demo import DemoServer, Interrupts, gateway_config_toml
from gateway.config import RtuBus, TcpBus, parse_config
from protocol.payloads import BatteryState, EventKind, PortState, PortStatus, UnitEvent, UnitState
from protocol.topics import UNIT_EVENT, UNIT_STATE, UnitAddress
from sandbox import config as sandbox_config
from server.settings import Settings, unknown_variables

ANNOUNCED = {
    "serial": {"rs485-1": {"device": "/dev/pts/7", "baudrate": 19200, "parity": "N",
                           "stopbits": 2, "bytesize": 8, "units": [1, 2]}},
    "tcp": {"tcp-1": {"host": "127.0.0.1", "port": 40123, "units": [1]}},
    "control": "http://127.0.0.1:1",
}  # fmt: skip


def test_demo_writes_a_gateway_config_for_every_announced_line(tmp_path: Path) -> None:
    text = gateway_config_toml("demo-gw", "mqtt://127.0.0.1:1883", ANNOUNCED, tmp_path / "o.db", 10)
    config = parse_config(tomllib.loads(text))
    rtu, tcp = config.bus
    assert isinstance(rtu, RtuBus) and rtu.port == "/dev/pts/7" and rtu.units == [1, 2]
    assert isinstance(tcp, TcpBus) and tcp.port == 40123
    assert config.report_period_s == 10


def state(seq: int, soc: float, online: bool = True) -> bytes:
    battery = BatteryState(
        soc_pct=soc, soh_pct=None, voltage_v=None, current_a=None, power_w=None, temp_c=30.0,
        rated_wh=2000.0, state="connected", alarms=[],
    )  # fmt: skip
    ports = [PortState(port=1, status=PortStatus.FAULTED, occupied=False, enabled=True,
                       power_w=0.0, energy_wh=0.0, temp_c=None)]  # fmt: skip
    message = UnitState(
        seq=seq, ts=datetime.now(UTC), online=online, battery=battery if online else None,
        ports=ports if online else [],
    )  # fmt: skip
    return message.model_dump_json().encode()


def test_live_view_keeps_the_newest_state_and_counts_garbage() -> None:
    view = LiveView("chargenet/v1")
    topic = UNIT_STATE.format("chargenet/v1", "gw", UnitAddress("rs485-1", 1))
    view.take(topic, state(5, 70.0))
    view.take(topic, state(3, 90.0))  # a replayed older snapshot is history
    view.take(topic, b"{garbage")
    event = UnitEvent(
        seq=6, ts=datetime.now(UTC), event_id="e" * 16, kind=EventKind.PORT_FAULTED, port=1
    )
    view.take(UNIT_EVENT.format("chargenet/v1", "gw", UnitAddress("rs485-1", 1)),
              event.model_dump_json().encode())  # fmt: skip
    text = view.render(datetime.now(UTC))
    assert "70.0%" in text and "90.0%" not in text
    assert "1X" in text
    assert "port_faulted port 1" in text
    assert view.malformed == 1
    view.take(topic, state(7, 0.0, online=False))
    assert "OFFLINE" in view.render(datetime.now(UTC))


def test_an_interrupt_waits_for_a_held_step_then_takes_effect() -> None:
    """SIGTERM mid-step (a child started, not yet recorded) must not cut the step short."""
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    interrupts = Interrupts()
    interrupts.install()
    steps = []
    try:
        with pytest.raises(KeyboardInterrupt), interrupts.held():
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("the rest of the step")
        assert steps == ["the rest of the step"]
        with pytest.raises(KeyboardInterrupt):  # outside a held step: at once
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("never")
        assert steps == ["the rest of the step"]
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGINT, before[1])


def test_the_demo_names_the_urls_that_reach_its_server() -> None:
    loopback = DemoServer("127.0.0.1", 8000, "token")
    assert (loopback.url, loopback.other_urls) == ("http://127.0.0.1:8000", [])
    everywhere = DemoServer("0.0.0.0", 8000, "token")
    assert everywhere.url == "http://127.0.0.1:8000"  # a wildcard is not an address to open
    assert all(not u.startswith("http://127.") for u in everywhere.other_urls)
    assert DemoServer("::", 8000, "token").url == "http://[::1]:8000"


def test_the_demo_platforms_agree_with_the_sandbox_and_the_server(tmp_path: Path) -> None:
    """The sandbox reads the file the demo writes, the server takes every variable it sets,
    and the secrets are in files only this user can read."""
    demo = platforms.prepare(tmp_path, "127.0.0.1", 4100, "http://127.0.0.1:4000", "127.0.0.1",
                             webhook_url="http://127.0.0.1:4001/line/webhook")  # fmt: skip
    config = sandbox_config.load(demo.config_path)
    assert config.port == 4100
    assert config.line.webhook_url == "http://127.0.0.1:4001/line/webhook"  # the intake
    assert config.lineworks.callback_url == "http://127.0.0.1:4000/lineworks/callback"
    assert set(config.lineworks.channels) == set(platforms.DEMO_CHANNELS)
    key_file = Path(demo.server_env["CHARGENET_LINEWORKS_PRIVATE_KEY_FILE"])
    for path in (demo.config_path, key_file):
        assert path.stat().st_mode & 0o777 == 0o600
    assert unknown_variables(demo.server_env) == []
    settings = Settings.model_validate(
        {k.removeprefix("CHARGENET_").lower(): v for k, v in demo.server_env.items()}
    )
    assert settings.line_channel_secret.get_secret_value() == (
        config.line.channel_secret.get_secret_value()
    )
    assert settings.line_api_url == f"{demo.url}/line"
    assert demo.chat_url == "http://127.0.0.1:4100/_sandbox/line/chat"
