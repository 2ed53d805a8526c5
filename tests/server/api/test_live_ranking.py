"""POST /api/v1/options under the "resolving" policy ranks as the benchmark's policy does
(`server.booking.resolving.Resolver` on the same places and forecast), and greedily when no
forecast can be made; the server prepares the policy when it starts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from server.api import schemas
from server.api.app import create_app
from server.booking.batches import load_forecast
from server.booking.demand import Seen
from server.booking.resolving import Ask, Resolver
from server.registry import load_demo_registry
from server.settings import Settings
from tests.conditions import async_read_until, async_wait_until
from tests.server.api.conftest import TOKEN, client_of, live_ports

pytestmark = pytest.mark.anyio

POINTS = [(33.506, 132.544), (33.509, 132.541), (33.503, 132.548)]


def live(url: str, expected: int) -> Settings:
    return Settings(database_url=url, mqtt_url=None, admin_token=SecretStr(TOKEN),
                    report_period_s=60.0, assignment_policy="resolving",
                    assignment_batch_s=0.05, assignment_seed=5, assignment_draws=5,
                    demand_expected_requests=expected)  # fmt: skip


async def options_of(url: str, expected: int) -> tuple[list[list[str]], list[list[str]], int]:
    """(the API's station ids per point, the pure policy's, batches ranked greedily), the
    points asked one after another (a batch each)."""
    now = datetime.now(UTC).replace(microsecond=0)
    chosen = live(url, expected)
    app = create_app(chosen, clock=lambda: now)
    async with app.router.lifespan_context(app):
        services = app.state.services
        await load_demo_registry(services.db)
        await live_ports(app)
        services.booking.invalidate_stations()  # the policy's start-up read them: none yet
        places = await async_read_until(services.booking.free_places,
                                        lambda p: sum(p.phones.values()) > 0,
                                        what="the live stations read again")  # fmt: skip
        forecast = await load_forecast(services.db, chosen, now)
        resolver = Resolver(places.stations, draws=chosen.assignment_draws, seed=5)
        pure = []
        for lat, lon in POINTS:  # what the service does with each batch of one
            ask = Ask(lat, lon, now.timestamp())
            ranked = resolver.rank([ask], places.free, forecast, now.timestamp(), places.phones)
            pure += ranked or [resolver.ranker.rank(lat, lon, now, places.free)]
            forecast.see([Seen(now.timestamp(), lat, lon, now.timestamp())])
        found = []
        async with client_of(app) as http:
            for lat, lon in POINTS:
                reply = await http.post("/api/v1/options", json={"lat": lat, "lon": lon})
                assert reply.status_code == 200, reply.text
                out = schemas.OptionList.model_validate(reply.json()).options
                found.append([o.station_id for o in out])
            metrics = (await http.get("/metrics")).text
        batches = services.booking.batches
        assert batches is not None and batches.solved + batches.greedy == len(POINTS)
        for what, n in (
            ("resolved", batches.solved),
            ("greedy", batches.greedy),
            ("late", 0),
            ("draws_cut", 0),
            ("solver_lost", 0),
        ):
            assert f'chargenet_assignment_total{{what="{what}"}} {float(n)}' in metrics
        return found, [[o.station_id for o in p] for p in pure], batches.greedy


async def test_options_follow_the_benchmarks_policy(sqlite_url: str) -> None:
    found, pure, greedy = await options_of(sqlite_url, expected=300)
    assert greedy == 0
    assert found == pure and all(found)


async def test_options_are_greedy_until_requests_make_a_forecast(sqlite_url: str) -> None:
    found, pure, greedy = await options_of(sqlite_url, expected=0)  # nobody registered
    assert greedy == 1  # the first: no total expected, no request seen; then the seen one
    assert found == pure and all(found)


async def test_the_server_prepares_the_policy_at_start_before_anyone_asks(sqlite_url: str) -> None:
    chosen = live(sqlite_url, expected=300)
    first = create_app(chosen)
    async with first.router.lifespan_context(first):  # the registry, before this start
        await load_demo_registry(first.state.services.db)
    app = create_app(chosen)
    async with app.router.lifespan_context(app):
        batches = app.state.services.booking.batches
        assert batches is not None
        worker = batches.solvers.workers[0]
        await async_wait_until(lambda: worker.alive, what="the solver started at start-up")
        assert batches.forecasts == 1 and batches.forecast is not None
        assert batches.forecast.ready and (batches.solved, batches.greedy) == (0, 0)
    assert not worker.alive
