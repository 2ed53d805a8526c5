import json
import logging

import pytest

from chargenet.logs import setup_logging


def test_json_logs_are_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "json")
    logging.getLogger("gateway.poller").warning("unit %s lost", "rs485-1.2")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "gateway.poller"
    assert entry["message"] == "unit rs485-1.2 lost" and entry["ts"].endswith("Z")
    setup_logging("INFO", "text")
