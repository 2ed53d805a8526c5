"""Incidents: problems crews must hear about, deduplicated, debounced, escalated, audited.

```
kinds      vocabulary: Kind, Severity, State, Policy, IncidentView, Signal, dedupe keys
rules      PURE: ChangeSet -> signals -> actions; timed transitions (`due`)
forecast   PURE: when a battery runs out at the booked load
depletion  reads batteries and bookings, turns forecasts into signals
service    IncidentService: the shell ingest, the app's ticker and the API call
```
"""

from server.incidents.kinds import IncidentView, Kind, Policy, Severity, State
from server.incidents.service import IncidentService

__all__ = ["IncidentService", "IncidentView", "Kind", "Policy", "Severity", "State"]
