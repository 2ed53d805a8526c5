"""After-action reports: what happened at stations over a period (docs/reports.md)."""
