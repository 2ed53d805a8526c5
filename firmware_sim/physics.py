"""How a battery's state moves with time: phones come, charge, fill up and leave.

Pure step functions: the caller passes the elapsed (already accelerated) time and a seeded
`random.Random`, so the same seed and the same steps give the same night, and tests can run
hours of it in milliseconds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final

from firmware_sim.battery import FINISHING_W, Phone, SimBattery

MAX_STEP_S: Final = 5.0
"""Longer steps are split so tapering and arrivals stay smooth under acceleration."""


@dataclass(frozen=True, slots=True)
class PhysicsConfig:
    """The knobs of the physics; rates are per port."""

    arrival_rate_per_h: float = 4.0
    """Phones arriving at one free port per hour (Poisson)."""
    phone_min_w: float = 5.0
    phone_max_w: float = 18.0
    phone_need_min_wh: float = 3.0
    phone_need_max_wh: float = 14.0
    stay_full_min_s: float = 300.0
    stay_full_max_s: float = 1800.0
    taper_wh: float = 1.5
    """Below this much still to take, a phone's draw tapers toward full."""
    temp_per_w: float = 0.1
    """Pack temperature rise over ambient per watt of load, at equilibrium."""
    temp_tau_s: float = 900.0


def new_phone(rng: random.Random, config: PhysicsConfig) -> Phone:
    """A phone with a random appetite, drawn in a fixed order (determinism)."""
    need = rng.uniform(config.phone_need_min_wh, config.phone_need_max_wh)
    max_w = rng.uniform(config.phone_min_w, config.phone_max_w)
    stay = rng.uniform(config.stay_full_min_s, config.stay_full_max_s)
    return Phone(need_wh=need, max_w=max_w, stay_full_s=stay)


def phone_draw_w(phone: Phone, config: PhysicsConfig) -> float:
    """Full power, tapering over the last `taper_wh`, a trickle once full."""
    if phone.full:
        return FINISHING_W
    return phone.max_w * max(0.15, min(1.0, phone.need_wh / config.taper_wh))


def plug(battery: SimBattery, index: int, phone: Phone, config: PhysicsConfig) -> None:
    """A phone arrives at port `index` (0-based)."""
    port = battery.ports[index]
    port.phone = phone
    port.session_s = 0.0
    port.power_w = phone_draw_w(phone, config)


def unplug(battery: SimBattery, index: int) -> None:
    """The phone at port `index` leaves."""
    port = battery.ports[index]
    port.phone = None
    port.session_s = 0.0
    port.power_w = 0.0


def advance(battery: SimBattery, dt_s: float, rng: random.Random, config: PhysicsConfig) -> None:
    """Move the battery on by `dt_s` seconds of simulated time, in bounded steps."""
    battery.heartbeat = (battery.heartbeat + 1) & 0xFFFF
    remaining = dt_s
    while remaining > 1e-9:
        step_s = min(remaining, MAX_STEP_S)
        step(battery, step_s, rng, config)
        remaining -= step_s


def step(battery: SimBattery, dt_s: float, rng: random.Random, config: PhysicsConfig) -> None:
    """One step: ports, then the pack's energy and temperature."""
    arrival_p = 1.0 - math.exp(-config.arrival_rate_per_h / 3600.0 * dt_s)
    for index, port in enumerate(battery.ports):
        draw = rng.random()  # drawn for every port every step, so the sequence is fixed
        if port.phone is None:
            if draw < arrival_p and battery.port_delivers(index):
                plug(battery, index, new_phone(rng, config), config)
            continue
        port.session_s += dt_s
        phone = port.phone
        if phone.full:
            phone.full_s += dt_s
            if phone.full_s >= phone.stay_full_s:
                unplug(battery, index)
                continue
        given_wh = battery.port_power_w(index) * dt_s / 3600.0
        port.energy_wh += given_wh
        if not phone.full:
            phone.need_wh = max(0.0, phone.need_wh - given_wh)
        port.power_w = phone_draw_w(phone, config)
    drawn_wh = battery.load_w * dt_s / 3600.0
    battery.soc_pct = max(0.0, battery.soc_pct - 100.0 * drawn_wh / battery.rated_wh)
    target_c = battery.ambient_c + config.temp_per_w * battery.load_w
    battery.temp_c += (target_c - battery.temp_c) * (1.0 - math.exp(-dt_s / config.temp_tau_s))
