"""The reliability suite's ledger: what each fault test made happen and what came of it.

A test marked `reliability` records, after its own assertions passed, what it generated,
what was delivered (stored once, or seen once by the person it was for), what was
delivered twice to a person or stored twice, and how long recovery took from the moment
the fault ended. `python -m bench faults` runs the group with `FAULT_REPORT_FILE`
naming a file and prints the table; without it, recording does nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Final

REPORT_ENV: Final = "FAULT_REPORT_FILE"
"""Not a CHARGENET_ name: the processes the tests start refuse unknown settings."""


@dataclass(frozen=True, slots=True)
class Outcome:
    fault: str
    generated: int
    delivered: int
    duplicated: int
    recovery_s: float
    what: str
    """What was counted: `gateway messages`, `crew alerts`, `LINE replies and pushes` ..."""

    @property
    def lost(self) -> int:
        return self.generated - self.delivered


def record(outcome: Outcome) -> None:
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as ledger:
            ledger.write(json.dumps({**asdict(outcome), "lost": outcome.lost}) + "\n")
