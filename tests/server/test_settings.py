"""The server's settings: a misspelt or inconsistent variable stops it with a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from server.incidents.kinds import Policy
from server.settings import Settings, unknown_variables


def test_unknown_variables_are_named_with_the_likely_setting() -> None:
    environ = {
        "CHARGENET_REPORT_PERIOD": "5",  # for CHARGENET_REPORT_PERIOD_S
        "CHARGENET_ADMIN_TOKEN": "x",
        "CHARGENET_LOG_FORMAT": "json",  # read by the logging setup
        "CHARGENET_WHATEVER_ELSE": "1",
        "PATH": "/usr/bin",
    }
    assert unknown_variables(environ) == [
        "CHARGENET_REPORT_PERIOD (did you mean CHARGENET_REPORT_PERIOD_S?)",
        "CHARGENET_WHATEVER_ELSE",
    ]


def test_low_soc_needs_hysteresis_and_reaches_the_incident_rules() -> None:
    with pytest.raises(ValidationError, match="low_soc_clear_pct"):
        Settings(low_soc_pct=25)
    policy = Policy.from_settings(
        Settings(low_soc_pct=25, low_soc_clear_pct=30, forecast_critical_min=90)
    )
    assert (policy.low_soc_pct, policy.low_soc_clear_pct) == (25, 30)
    assert policy.forecast_critical.total_seconds() == 90 * 60


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CHARGENET_REPORT_PERIOD", "5", "CHARGENET_REPORT_PERIOD_S?"),
        ("CHARGENET_LOW_SOC_PCT", "25", "low_soc_clear_pct (20.0) must be above"),
    ],
)
def test_the_server_refuses_to_start_on_a_bad_variable(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    env = {**os.environ, variable: value,
           "CHARGENET_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "chargenet", "db", "upgrade"], env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert says in done.stderr
    assert not (tmp_path / "db.sqlite3").exists()
