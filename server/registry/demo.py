"""The demo's registry: twelve shelters in 大洲市 (Ozu, Ehime) and the simulator's batteries.

Ozu flooded in July 2018 when the Hijikawa overflowed; its shelters are schools, the city
gymnasium and district community centres (公民館), which is what `demo_stations.csv` lists.
Names are those of real kinds of places; coordinates and addresses are plausible, not
surveyed. Counterpart group `南予` (the southern Ehime block; which city gives first
support is an assumption of the demo, not recorded here).

Batteries: `chargenet demo` names its one gateway `demo-gw` and the buses after the
simulator's lines, so each scenario has its own mapping file, `{scenario}_batteries.csv`:
- `demo`: `rs485-1.1` and `rs485-1.2` at 大洲小学校 (ozu-01), `tcp-1.1` at the gymnasium
  (ozu-02); the other ten shelters have no batteries yet.
- `typhoon-night`: line `shelter-NN` holds the two batteries of shelter `ozu-NN`.
A scenario without a mapping file loads the stations only.

Crew routes (`demo_crew_routes.csv`, every scenario): 大洲市 -> LINE WORKS channel
`crew-ozu`, counterpart group 南予 -> `group-nanyo`, HQ -> `hq-ehime`, the channels the
demo's LINE WORKS sandbox has (`chargenet.platforms.DEMO_CHANNELS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from server.access.operators import SYSTEM
from server.db.session import Database
from server.registry.crew_routes import CrewRoutes
from server.registry.service import Clock, ImportReport, Registry, utc_now

STATIONS_CSV = "demo_stations.csv"
CREW_ROUTES_CSV = "demo_crew_routes.csv"


@dataclass(frozen=True, slots=True)
class DemoLoad:
    stations: ImportReport
    routes: ImportReport
    batteries: ImportReport | None
    """None when the scenario has no mapping file."""


def demo_csv(name: str) -> str | None:
    """One of the shipped files, or None when there is no such file."""
    path = resources.files("server.registry") / "data" / name
    return path.read_text(encoding="utf-8") if path.is_file() else None


async def load_demo_registry(
    db: Database, scenario: str = "demo", clock: Clock = utc_now
) -> DemoLoad:
    """Load the shipped stations, crew routes and the scenario's mappings; a second load
    changes nothing.

    `scenario` is a name or a scenario file path (its stem picks the mapping file).
    Raises RuntimeError if the shipped files are invalid, which the tests rule out.
    """
    registry, crews = Registry(db, clock), CrewRoutes(db, clock)
    stations_csv, routes_csv = demo_csv(STATIONS_CSV) or "", demo_csv(CREW_ROUTES_CSV) or ""
    stations = _valid(STATIONS_CSV, await registry.import_stations_csv(stations_csv, SYSTEM))
    routes = _valid(CREW_ROUTES_CSV, await crews.import_csv(routes_csv, SYSTEM))
    name = f"{Path(scenario).stem}_batteries.csv"
    text = demo_csv(name)
    if text is None:
        return DemoLoad(stations, routes, None)
    batteries = _valid(name, await registry.import_batteries_csv(text, SYSTEM))
    return DemoLoad(stations, routes, batteries)


def _valid(name: str, report: ImportReport) -> ImportReport:
    if not report.ok:
        raise RuntimeError(f"{name}: {'; '.join(map(str, report.errors))}")
    return report
