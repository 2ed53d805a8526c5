"""The station registry: shelters, which battery stands where, CSV import, demo data.

```
Registry(db, clock)          create/update/get/list stations, map/unmap batteries,
                             import_stations_csv / import_batteries_csv /
                             import_shelters (all-or-nothing)
models                       StationSpec, StationPatch, BatteryMapping (validated input)
csv_import                   pure parsing with errors naming row and column
shelter_formats              the same for GSI's and the Digital Agency's published
                             shelter files (CSV, GeoJSON; UTF-8 or Shift_JIS)
crew_routes.CrewRoutes       which LINE WORKS channel hears a municipality, group, HQ
demo.load_demo_registry      the shipped 大洲市 shelters, their crew routes and the
                             simulator's batteries
```
"""

from server.registry.csv_import import RowError
from server.registry.demo import DemoLoad, load_demo_registry
from server.registry.models import (
    BatteryInfo,
    BatteryMapping,
    StationInfo,
    StationPatch,
    StationSpec,
)
from server.registry.service import ImportReport, Registry

__all__ = [
    "BatteryInfo",
    "BatteryMapping",
    "DemoLoad",
    "ImportReport",
    "Registry",
    "RowError",
    "StationInfo",
    "StationPatch",
    "StationSpec",
    "load_demo_registry",
]
