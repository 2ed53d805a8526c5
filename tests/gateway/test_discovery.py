import asyncio

import pytest

from gateway.discovery import MAX_READ, ModelSpan, RegisterImage, discover, model_body, plan_reads
from gateway.errors import NotSunSpec
from protocol.sunspec import BATTERY, DC_MEASUREMENT, SUNS_BASE
from protocol.vendor_model import VENDOR
from tests.gateway.registers import FakeLink, FakeUnit, dc_port, vendor_port


def test_discovery_walks_the_chain_and_plans_merged_reads() -> None:
    unit = FakeUnit([dc_port()] * 4, [vendor_port()] * 4)
    layout = asyncio.run(discover(FakeLink({1: unit}), "bus", 1))
    assert set(layout.models) == {1, BATTERY.model_id, DC_MEASUREMENT.model_id, VENDOR.model_id}
    assert layout.models[1].address == SUNS_BASE + 2
    assert layout.models[DC_MEASUREMENT.model_id].length == DC_MEASUREMENT.length(4)
    # 802 + 714 + vendor are adjacent: 64 + 120 + 38 = 222 registers in two reads.
    assert layout.registers_per_poll == 222
    assert len(layout.reads) == 2
    assert all(count <= MAX_READ for _, count in layout.reads)


def test_eight_port_model_needs_two_reads_on_its_own() -> None:
    span = ModelSpan(DC_MEASUREMENT.model_id, 40100, DC_MEASUREMENT.length(8))
    reads = plan_reads([span])
    assert [count for _, count in reads] == [125, 95]
    assert reads[1][0] == 40100 + 125


def test_gaps_between_models_are_not_read() -> None:
    reads = plan_reads([ModelSpan(802, 100, 10), ModelSpan(714, 200, 10)])
    assert reads == ((100, 12), (200, 12))


def test_no_marker_is_not_sunspec() -> None:
    unit = FakeUnit([dc_port()], None)
    unit.registers[0] = 0
    with pytest.raises(NotSunSpec, match="SunS"):
        asyncio.run(discover(FakeLink({1: unit}), "bus", 1))


def test_battery_without_model_714_is_refused() -> None:
    unit = FakeUnit([dc_port()], None)
    # Replace 714's id with an unknown model id of the same length.
    at = unit.registers.index(DC_MEASUREMENT.model_id)
    unit.registers[at] = 63001
    with pytest.raises(NotSunSpec, match="714"):
        asyncio.run(discover(FakeLink({1: unit}), "bus", 1))


def test_a_replaced_battery_is_noticed_by_its_headers() -> None:
    unit = FakeUnit([dc_port()] * 2, [vendor_port()] * 2)
    link = FakeLink({1: unit})
    layout = asyncio.run(discover(link, "bus", 1))
    image = RegisterImage([(a, asyncio.run(link.read(1, a, n))) for a, n in layout.reads])
    assert model_body(layout, VENDOR.model_id, image) is not None
    span = layout.models[VENDOR.model_id]
    unit.registers[span.address - SUNS_BASE + 1] += 8  # the vendor model grew a port
    image = RegisterImage([(a, asyncio.run(link.read(1, a, n))) for a, n in layout.reads])
    with pytest.raises(LookupError):
        model_body(layout, VENDOR.model_id, image)
