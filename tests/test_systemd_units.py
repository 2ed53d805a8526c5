"""The shipped systemd units agree with the code: each ExecStart is a command chargenet's
own parsers accept, the gateway's StateDirectory holds the outbox the shipped TOML names,
and `systemd-analyze verify` (where installed) accepts each unit."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import load_config

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted((ROOT / "deploy").glob("*/*.service"))
INSTALLED = "/opt/chargenet/bin/chargenet"
"""Where the units expect chargenet (a venv in /opt/chargenet, docs/operations.md)."""

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections -> key -> every value in order: systemd allows a key more than once (and
    an empty value resets the list), which configparser refuses."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{line!r} outside a section"
        key, _, value = line.partition("=")
        values = section.setdefault(key.strip(), [])
        if value.strip():
            values.append(value.strip())
        else:
            values.clear()
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{section}.{key}: {values}"
    return values[0]


def test_the_parser_keeps_repeated_keys_and_resets() -> None:
    unit = parse_unit("[S]\nA=1\nA=2\nB=x\nB=\nB=y\nC=a \\\n  b\n")
    assert unit == {"S": {"A": ["1", "2"], "B": ["y"], "C": ["a b"]}}


def test_the_units_are_all_there() -> None:
    assert [u.name for u in UNITS] == [
        "chargenet-gateway.service", "chargenet-intake.service", "chargenet-server.service",
    ]  # fmt: skip


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_exec_start_is_a_command_chargenet_accepts(path: Path, tmp_path: Path) -> None:
    """Run the unit's own arguments through the real entry point, made to stop right after
    parsing them: the gateway on a config file that is not there, the server and the intake
    on an unknown setting. An argument argparse refused would end in `usage:` instead."""
    unit = parse_unit(path.read_text())
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[0] == INSTALLED
    part = argv[1]
    env = {"PATH": "/usr/bin:/bin", "CHARGENET_NOT_A_SETTING": "1"}
    args = argv[2:]
    if part == "gateway":
        assert args[args.index("--config") + 1] == "/etc/chargenet/gateway.toml"
        args[args.index("--config") + 1] = str(tmp_path / "absent.toml")
        stops_with = "chargenet gateway: bad config: cannot read"
    else:
        assert part in ("server", "intake")
        stops_with = "chargenet: unknown settings in the environment: CHARGENET_NOT_A_SETTING"
    done = subprocess.run(
        [sys.executable, "-m", "chargenet", part, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "usage:" not in done.stderr, done.stderr
    assert stops_with in done.stderr


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_the_units_restart_and_run_confined(path: Path) -> None:
    service = parse_unit(path.read_text())["Service"]
    assert service["Restart"] == ["always"] and float(service["RestartSec"][0]) > 0
    assert service["User"] == ["chargenet"] and service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"] and service["PrivateTmp"] == ["yes"]


def test_the_gateway_unit_keeps_the_outbox_of_the_shipped_config() -> None:
    service = parse_unit((ROOT / "deploy/gateway/chargenet-gateway.service").read_text())["Service"]
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["30"]
    assert "dialout" in service["SupplementaryGroups"][0].split()
    assert "PrivateDevices" not in service  # it would hide the serial adapters
    state = Path("/var/lib") / service["StateDirectory"][0]
    config = load_config(ROOT / "deploy/gateway/gateway.toml")
    assert config.store_path.parent == state
    for path in service.get("ReadWritePaths", []):
        assert Path(path) == state


def test_systemd_analyze_accepts_the_units(tmp_path: Path) -> None:
    """With chargenet where the venv has it (verify wants the program to exist)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the other checks above still ran")
    chargenet = Path(sys.executable).parent / "chargenet"
    assert chargenet.exists(), chargenet
    copies = []
    for path in UNITS:
        copy = tmp_path / path.name
        copy.write_text(path.read_text().replace(INSTALLED, str(chargenet)))
        copies.append(str(copy))
    done = subprocess.run([analyze, "verify", *copies], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
