"""The benchmarks start with the dev dependencies alone, explain themselves, and fail loudly.

A benchmark that prints figures after one of its parts died measured nothing: the ingest
benchmark once reported 60,000 "lost" messages whose publishers had crashed, and exited 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench import BENCHES
from bench.assignment import FutureForecast, make_scenario, run_live, solve_optimum
from bench.ingest import Phase
from bench.processes import BenchFailed
from chargenet.demo import free_port
from server.booking.demand import Profile

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip


def test_the_runner_knows_every_benchmark() -> None:
    modules = {p.stem for p in (ROOT / "bench").glob("[!_]*.py") if "\ndef main(" in p.read_text()}
    assert modules == set(BENCHES)


def test_the_runner_lists_every_benchmark_and_exits_0() -> None:
    done = bench("--help")
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("benchmarks:", 1)[1]
    assert all(f"  {name} " in listed for name in BENCHES), done.stdout


def test_an_unknown_benchmark_is_refused_without_running_any() -> None:
    done = bench("nope")
    assert done.returncode == 2
    assert "unknown benchmark nope" in done.stderr
    assert "==" not in done.stdout


@pytest.mark.parametrize("name", BENCHES)
def test_a_benchmark_explains_itself_through_the_runner(name: str) -> None:
    done = bench(name, "--help")
    assert done.returncode == 0, done.stderr
    assert f"usage: python -m bench.{name}" in done.stdout


def test_a_tiny_ingest_run_stores_everything_and_says_on_what(tmp_path: Path) -> None:
    out = tmp_path / "ingest.json"
    done = bench("ingest", "--count", "200", "--stores", "sqlite", "--rounds", "1",
                 "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    store = json.loads(out.read_text())["results"]["sqlite"]
    [one] = store["processes"]["1"]["rounds"]
    bare, server = one["bare"], one["server"]
    assert (bare["generated"], bare["stored"], bare["lost"]) == (400, 400, 0)
    assert (server["generated"], server["stored"], server["lost"]) == (400, 400, 0)
    assert server["counters"]["applied"] == 400
    assert store["settings"] == {"journal_mode": "wal", "synchronous": "NORMAL"}
    assert "journal_mode=wal, synchronous=NORMAL" in done.stdout


def test_an_ingest_run_whose_publishers_cannot_connect_fails(tmp_path: Path) -> None:
    out = tmp_path / "ingest.json"
    refusing = str(free_port())  # nothing listens there
    done = bench("ingest", "--count", "10", "--publishers", "1", "--stores", "sqlite",
                 "--rounds", "1", "--publisher-port", refusing, "--out", str(out))  # fmt: skip
    assert done.returncode == 1
    assert "bench.ingest FAILED: publisher" in done.stderr
    assert not out.exists()


def test_a_phase_short_of_what_was_generated_fails_the_run() -> None:
    assert Phase("server", 400, 400, 2.0).rate == 200.0
    with pytest.raises(BenchFailed, match="399 of 400 messages stored"):
        Phase("server", 400, 399, 2.0)


def test_a_quick_platforms_run_measures_its_three_figures_and_loses_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "platforms.json"
    done = bench("platforms", "--quick", "--out", str(out), timeout_s=240)
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(out.read_text())["results"]["sqlite"]
    assert found["durability"] == {"journal_mode": "wal", "synchronous": "NORMAL"}
    assert len(found["fault_to_alert"]["samples_ms"]) == 3
    assert len(found["fault_to_push"]["samples_ms"]) == 3
    assert all(0 < ms < 30_000 for ms in found["fault_to_alert"]["samples_ms"])
    burst = found["burst"]
    assert (burst["events"], burst["lost"], burst["doubled"]) == (90, 0, 0)
    assert burst["acked"] == burst["events"] + burst["redeliveries"]
    assert "fault -> crew alert (LINE WORKS)" in done.stdout


def test_a_quick_gateway_soak_polls_publishes_and_stores_the_outage(tmp_path: Path) -> None:
    out = tmp_path / "gateway_soak.json"
    done = bench("gateway_soak", "--quick", "--out", str(out), timeout_s=180)
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(out.read_text())["result"]
    assert found["sim_hours"] > 0.2 and found["outage_sim_hours"] > 0.05
    assert found["polls_per_unit"] > 10
    assert found["messages_per_sim_hour"] >= 10 * 60 * 0.8  # every unit at least per minute
    assert found["rss_samples"] > 10 and found["peak_rss_mb"] >= found["rss_first_quarter_mb"]
    assert found["outage_messages_per_hour"] > 0 and found["outage_bytes_per_message"] > 0
    assert "RSS slope 2nd half MB/sim-hour" in done.stdout


def test_a_tiny_live_replay_solves_in_the_servers_solver_process() -> None:
    scenario = make_scenario("tiny", 20, 300, seed=5)
    outcome, live = run_live(scenario, draws=2)
    assert outcome.served + outcome.unserved == 300 and outcome.served > 250
    assert live.batches > 0 and live.greedy_batches == 0 and live.draws_cut == 0
    assert live.solver_cpu_ms_per_request > 0  # its worker's CPU is counted
    assert live.cpu_ms_per_request > live.solver_cpu_ms_per_request
    _, late = run_live(scenario, draws=2, deadline_s=1e-9)  # no draw can fit
    assert late.greedy_batches == late.late_batches == late.batches > 0
    paired, two = run_live(scenario, draws=2, solvers=2)  # the same draws, side by side
    assert paired == replace(outcome, ms_per_request=paired.ms_per_request)
    assert two.batches == live.batches and two.greedy_batches == 0


def test_the_live_replay_with_the_real_future_as_its_forecast_is_near_the_optimum() -> None:
    scenario = make_scenario("tiny", 20, 300, seed=5)
    future = FutureForecast([], Profile(scenario.demand.t0), 300, requests=scenario.requests)
    drawn = list(future.draws(np.random.default_rng(0), scenario.requests[99].at, 2))
    assert [len(d.point) for d in drawn] == [200, 200]  # the requests after the 100th
    outcome, _ = run_live(scenario, draws=1, forecast=future)
    optimum = solve_optimum(scenario, 8).cost
    served, _ = run_live(scenario, draws=1)
    assert optimum <= outcome.cost < served.cost  # knowing the future beats forecasting it
