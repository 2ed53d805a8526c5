import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import RtuBus, TcpBus, load_config
from gateway.errors import ConfigError

GOOD = """
gateway_id = "shelter-gw-1"
store_path = "outbox.db"
report_period_s = 30

[mqtt]
url = "mqtt://127.0.0.1:1883"
username = "shelter-gw-1"
password = "generated-in-test"

[[bus]]
name = "rs485-1"
kind = "rtu"
port = "/dev/ttyUSB0"
baudrate = 19200
parity = "N"
stopbits = 2
units = [1, 2, 3]

[[bus]]
name = "lan"
kind = "tcp"
host = "127.0.0.1"
port = 5020
units = [1]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_good_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.store_path == tmp_path / "outbox.db"
    rtu, tcp = config.bus
    assert isinstance(rtu, RtuBus) and rtu.units == [1, 2, 3] and rtu.stopbits == 2
    assert isinstance(tcp, TcpBus) and tcp.port == 5020
    assert config.client_id == "chargenet-gw-shelter-gw-1"
    assert "generated-in-test" not in repr(config)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (("baudrate = 19200", "baud_rate = 19200"), "bus[0].baud_rate"),
        (('parity = "N"', 'parity = "X"'), "bus[0].parity"),
        (("units = [1, 2, 3]", "units = [1, 1]"), "bus[0].units"),
        (("units = [1]", "units = [300]"), "bus[1].units[0]"),
        (("port = 5020", "port = 70000"), "bus[1].port"),
        (('url = "mqtt://127.0.0.1:1883"', 'url = "http://x"'), "mqtt.url"),
        (("report_period_s = 30", "report_period_s = -1"), "report_period_s"),
        (('gateway_id = "shelter-gw-1"', 'gateway_id = "a/b"'), "gateway_id"),
        (('kind = "tcp"', 'kind = "udp"'), "bus[1]"),
        (("[mqtt]", "[mqtt]\nqos = 2"), "mqtt.qos"),
    ],
)
def test_bad_key_is_named(tmp_path: Path, edit: tuple[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, GOOD.replace(*edit)))
    assert caught.value.key == key


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "gateway_id = "))


def test_command_exits_2_and_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("stopbits = 2", "stop_bits = 2"))
    done = subprocess.run(
        [sys.executable, "-m", "chargenet", "gateway", "--config", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "bus[0].stop_bits" in done.stderr
