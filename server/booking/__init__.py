"""Scheduling and booking: a pure core (`capacity`, `ranking`) and its transactional shell."""
