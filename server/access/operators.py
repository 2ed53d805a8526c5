"""An operator's role and reach, as plain rules the routes and services check.

Three roles, from the prefecture's side of a disaster:
- `hq`: the prefecture's headquarters; everything, including the operator accounts;
- `municipality`: one municipality's staff; its stations, batteries, incidents and crew
  routes only, read and written;
- `viewer`: reads only (every GET, no write); everywhere, or one municipality's if given.

What is everyone's and no municipality's (the audit log, residents' notifications,
counterpart groups' and HQ's crew routes, a battery on no station) needs an operator who
reaches everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from server.audit import SYSTEM_ACTOR
from server.errors import Forbidden, Invalid

Role = Literal["hq", "municipality", "viewer"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    """The actor in the audit log."""
    role: Role
    municipality: str | None = None
    """The one municipality reached; None: all of them."""

    def __post_init__(self) -> None:
        if self.role == "municipality" and not self.municipality:
            raise Invalid("a municipality operator needs its municipality")
        if self.role == "hq" and self.municipality is not None:
            raise Invalid("an hq operator reaches every municipality; give none")

    @property
    def writes(self) -> bool:
        return self.role != "viewer"

    @property
    def everywhere(self) -> bool:
        return self.municipality is None

    def reaches(self, municipality: str | None) -> bool:
        return self.everywhere or municipality == self.municipality

    def require_reach(self, municipality: str | None, what: str) -> None:
        """Forbidden unless `what`, which belongs to `municipality`, is this operator's."""
        if not self.reaches(municipality):
            where = municipality or "no municipality"
            raise Forbidden(f"{self.name} acts for {self.municipality} only; {what} is {where}'s")

    def require_everywhere(self, what: str) -> None:
        if not self.everywhere:
            raise Forbidden(f"{what} is everyone's; {self.name} acts for {self.municipality} only")

    def require_write(self) -> None:
        if not self.writes:
            raise Forbidden(f"{self.name} is a viewer: it reads and changes nothing")

    def require_hq(self, what: str) -> None:
        if self.role != "hq":
            raise Forbidden(f"{what} is HQ's; {self.name} is a {self.role} operator")


SYSTEM: Final = Operator(SYSTEM_ACTOR, "hq")
"""Loaders and timers, which act for the whole prefecture."""
