"""Phones come and go, SoC falls with load, temperature follows it; same seed, same night."""

from __future__ import annotations

import random

import pytest

from firmware_sim.battery import FINISHING_W, SimBattery
from firmware_sim.physics import PhysicsConfig, advance, new_phone, phone_draw_w, plug, step


def night(seed: int, hours: float = 3.0) -> SimBattery:
    battery = SimBattery.create(1, 8, soc_pct=90.0)
    rng = random.Random(seed)
    config = PhysicsConfig(arrival_rate_per_h=6.0)
    for _ in range(int(hours * 3600 / 30)):
        advance(battery, 30.0, rng, config)
    return battery


def fingerprint(battery: SimBattery) -> tuple[object, ...]:
    ports = tuple((p.occupied, round(p.power_w, 9), round(p.energy_wh, 9)) for p in battery.ports)
    return battery.soc_pct, battery.temp_c, ports


def test_same_seed_same_night_other_seed_other_night() -> None:
    assert fingerprint(night(42)) == fingerprint(night(42))
    assert fingerprint(night(42)) != fingerprint(night(43))


def test_soc_falls_by_the_energy_given() -> None:
    battery = night(5)
    given_wh = sum(p.energy_wh for p in battery.ports)
    assert given_wh > 50  # phones did come and charge
    lost_wh = (90.0 - battery.soc_pct) / 100 * battery.rated_wh
    assert lost_wh > given_wh  # conversion losses and the controller on top
    assert lost_wh < given_wh / 0.92 + 2.0 * 3 + 1.0


def test_temperature_follows_load() -> None:
    battery = SimBattery.create(1, 8, temp_c=25.0, ambient_c=25.0)
    config = PhysicsConfig(arrival_rate_per_h=0.0)
    rng = random.Random(1)
    for index in range(8):
        plug(battery, index, new_phone(rng, config), config)
        battery.ports[index].phone.need_wh = 1000.0  # type: ignore[union-attr]
        battery.ports[index].power_w = 18.0
        battery.ports[index].phone.max_w = 18.0  # type: ignore[union-attr]
    advance(battery, 3 * 3600, rng, config)
    target = 25.0 + config.temp_per_w * battery.load_w
    assert battery.temp_c == pytest.approx(target, abs=0.5)
    assert battery.temp_c > 38.0


def test_a_phone_tapers_fills_up_and_leaves() -> None:
    battery = SimBattery.create(1, 1)
    config = PhysicsConfig(arrival_rate_per_h=0.0, stay_full_min_s=60, stay_full_max_s=60)
    rng = random.Random(3)
    plug(battery, 0, new_phone(rng, config), config)
    phone = battery.ports[0].phone
    assert phone is not None and config.phone_min_w <= battery.ports[0].power_w
    powers = []
    while not phone.full:
        step(battery, 5.0, rng, config)
        powers.append(battery.ports[0].power_w)
    assert powers[-2] < phone.max_w  # tapering before full
    assert battery.ports[0].power_w == FINISHING_W  # full: a trickle, still plugged
    assert battery.ports[0].occupied
    advance(battery, 65.0, rng, config)
    assert not battery.ports[0].occupied
    assert battery.ports[0].session_s == 0


def test_no_phone_arrives_at_a_disabled_port() -> None:
    battery = SimBattery.create(1, 2)
    battery.ports[0].enabled = False
    advance(battery, 10 * 3600, random.Random(1), PhysicsConfig(arrival_rate_per_h=60.0))
    assert not battery.ports[0].occupied
    assert battery.ports[0].energy_wh == 0


def test_low_soc_warning_comes_from_physics() -> None:
    battery = SimBattery.create(1, 8, soc_pct=16.0, rated_wh=200.0)
    advance(battery, 4 * 3600, random.Random(9), PhysicsConfig(arrival_rate_per_h=20.0))
    assert battery.soc_pct < 15.0
    assert battery.evt1() & (1 << 14)  # under_soc_min_warning


def test_draw_curve() -> None:
    config = PhysicsConfig()
    phone = new_phone(random.Random(1), config)
    phone.need_wh = 10.0
    assert phone_draw_w(phone, config) == phone.max_w
    phone.need_wh = config.taper_wh / 2
    assert phone_draw_w(phone, config) == pytest.approx(phone.max_w / 2)
