"""chargenet's vendor model: what SunSpec has no point for.

Model 714 carries each USB port's electrical state; it cannot say whether a phone is
plugged in, whether the port is switched on, or which ticket code the port's display
shows. This model adds those, one repetition per port, plus the battery's temperature.
"""

from __future__ import annotations

from typing import Final

from protocol.sunspec import ModelDef, Point

VENDOR_MODEL_ID: Final = 64900
DISPLAY_CODE_REGS: Final = 4
"""The display shows up to 8 ASCII characters (2 per register)."""

VENDOR: Final = ModelDef(
    VENDOR_MODEL_ID,
    "chargenet",
    fixed=(
        Point("NPrt", "uint16"),
        Point("BatTmp", "int16", sf="Tmp_SF"),
        Point("Tmp_SF", "sunssf"),
        Point("Pad", "pad"),
    ),
    group=(
        Point("Occ", "enum16"),
        Point("Ena", "enum16", writable=True),
        Point("Code", "string", DISPLAY_CODE_REGS, writable=True),
        Point("SesS", "uint32", 2),
    ),
    group_name="Prt",
    count_point="NPrt",
)
"""Per port: Occ (1 = phone detected), Ena (1 = switched on, writable), Code (the ticket
code on the port's display, writable), SesS (seconds since the phone was plugged in)."""
