"""The simulator as the demo runs it: a process, one JSON line, signals, the fault client."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import termios
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.cli import main
from firmware_sim.modbus_frames import crc_ok, with_crc
from protocol.sunspec import SUNS_BASE


@pytest.fixture
def sim_process() -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    args = ["--serial-lines", "1", "--units-per-line", "2", "--ports", "4", "--tcp-units", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "firmware_sim", *args, "--no-physics", "--seed", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    info = json.loads(process.stdout.readline())
    yield process, info
    if process.poll() is None:
        process.kill()
    process.wait(timeout=5)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def raw_exchange(device: str, data: bytes, want: int, timeout_s: float = 2.0) -> bytes:
    """Write raw bytes as a gateway would and collect `want` bytes of answer."""
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd, termios.TCSANOW)
        os.write(fd, data)
        got = b""
        while len(got) < want:
            ready, _, _ = select.select([fd], [], [], timeout_s)
            if not ready:
                break
            got += os.read(fd, 512)
        return got
    finally:
        os.close(fd)


def read_request(unit: int, count: int) -> bytes:
    return with_crc(bytes([unit, 3]) + SUNS_BASE.to_bytes(2, "big") + count.to_bytes(2, "big"))


def test_json_line_then_clean_exit_on_sigterm(
    sim_process: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    process, info = sim_process
    line = info["serial"]["line-1"]
    assert line["units"] == [1, 2] and line["baudrate"] == 19200 and line["bytesize"] == 8
    assert (line["parity"], line["stopbits"]) == ("N", 2)
    assert Path(line["device"]).exists()
    assert info["tcp"]["tcp-1"]["port"] > 0 and info["tcp"]["tcp-1"]["units"] == [1]
    assert info["control"].startswith("http://127.0.0.1:")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=5) == 0


def test_garbage_from_the_gateway_side_is_survived(
    sim_process: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    _, info = sim_process
    device = info["serial"]["line-1"]["device"]
    bad_crc = bytearray(read_request(1, 2))
    bad_crc[-1] ^= 0x55
    noise = b"\xff\x00\x10\x03" + bytes(bad_crc)
    answer = raw_exchange(device, noise + read_request(2, 2), want=9)
    assert answer == with_crc(bytes([2, 3, 4]) + b"SunS")
    assert crc_ok(answer)


def test_fault_client_commands(
    sim_process: tuple[subprocess.Popen[str], dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, info = sim_process
    device, url = info["serial"]["line-1"]["device"], info["control"]
    target = ["--control", url, "--line", "line-1", "--unit", "2"]
    assert main(["fault", *target, "silent"]) == 0
    assert raw_exchange(device, read_request(2, 2), want=9, timeout_s=0.3) == b""
    assert main(["clear", *target, "silent"]) == 0
    assert len(raw_exchange(device, read_request(2, 2), want=9)) == 9
    assert main(["fault", *target, "port_fault", "--port", "1", "--error", "over_current"]) == 0
    assert main(["units", "--control", url]) == 0
    units = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["units"]
    assert units[1]["port_states"][0]["status"] == "error"
    assert main(["fault", *target, "port_fault", "--port", "1"]) == 1  # no error code
    assert main(["phone", *target, "--port", "2"]) == 0
    assert main(["units", "--control", url]) == 0
    units = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["units"]
    assert units[1]["port_states"][1]["occupied"] is True


def test_bad_scenario_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[line]]\nname = "a"\nunits = [{ unit_id = 1, prots = 3 }]\n')
    assert main(["--scenario", str(path)]) == 2
    assert "line[0].units[0].prots" in capsys.readouterr().err
