"""Topic routing: which protocol model a topic carries and which handler applies it.

The table itself (`routes.MQTT_ROUTES`) is a constant; what it counts lives in the
`IngestCounters` its caller owns, so no state hides in a module.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from protocol.payloads import Envelope
from protocol.topics import TopicPattern, UnitAddress

if TYPE_CHECKING:
    from server.ingest.batch import Batch

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Envelope)
LOUD_FIRST = 10
"""Log the first bad messages of a kind as warnings, then only every LOUD_EVERY-th."""
LOUD_EVERY = 1000
TOPIC_CACHE_MAX = 100_000
"""Topics a `TopicCache` remembers before it starts over (a bound against junk topics)."""


@dataclass
class IngestCounters:
    """Everything the ingest counts, for /metrics."""

    received: int = 0
    unknown_topic: int = 0
    malformed: int = 0
    routed: Counter[str] = field(default_factory=Counter)
    """Valid messages per kind (`UnitState`, ...); for a deferred one, a valid envelope."""
    applied: int = 0
    """Messages applied for the first time."""
    duplicates: int = 0
    """(gw, seq) or event_id already seen, or a status from a retired run: nothing changed."""
    history: int = 0
    """States older than the unit's current one (replays): kept as history only."""
    superseded: int = 0
    """Fresh states skipped because a newer one for the same unit came in the same batch."""
    seq_restarts: int = 0
    """Gateways that came back with their seq started again (a lost outbox)."""
    batches: int = 0
    batch_retries: int = 0
    """Batches rolled back after losing a race with another server process, and re-run."""
    batch_errors: int = 0
    failed: int = 0
    """Messages dropped because applying them alone still failed (a bug, logged)."""
    commands_sent: int = 0
    connects: int = 0
    sweeps_held: int = 0
    implausible: int = 0
    """Messages refused for a seq or ts no gateway could have sent (`plausibility`)."""
    receipts_sent: int = 0
    """Receipts published to gateways for what committed batches settled."""
    """Staleness sweeps skipped because we were not listening long enough to judge silence."""


class EnvelopeOnly(Envelope):
    """`v`, `seq`, `ts` and `historical` checked as `Envelope` does; the rest left unread.

    About a third of the cost of a whole unit state: what a deferred message gets first.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class Inbound(Generic[P]):
    """A validated gateway message with what its topic told us.

    A deferred message (`raw` set) has only its envelope validated so far: `payload` is an
    `EnvelopeOnly`, and `complete` validates the whole of `raw` when the message is applied.
    """

    route: Route[P]
    gw_id: str
    unit: UnitAddress | None
    payload: P
    received_at: datetime
    raw: bytes | None = None

    @property
    def seq(self) -> int:
        return self.payload.seq


Handler = Callable[["Batch", Inbound[P]], None]


@dataclass(frozen=True, slots=True)
class Route(Generic[P]):
    pattern: TopicPattern
    model: type[P]
    handler: Handler[P]
    deferrable: bool = False
    """Whether `route(..., defer=True)` may validate only the envelope (see `complete`)."""

    @property
    def kind(self) -> str:
        return self.model.__name__


Matched = tuple[Route[Any], str, UnitAddress | None]
TopicCache = dict[str, Matched | None]
"""Topic -> what it matched (None: no route), for `TopicRouter.route`."""


class TopicRouter:
    """Match a topic to a route, validate its payload, count whatever does not fit."""

    def __init__(self, *routes: Route[Any]) -> None:
        self.routes: tuple[Route[Any], ...] = routes

    def subscriptions(self, prefix: str, shared_group: str | None = None) -> list[str]:
        """Topic filters for every route; `$share/{group}/...` to share them among servers."""
        filters = [route.pattern.subscription(prefix) for route in self.routes]
        if shared_group:
            return [f"$share/{shared_group}/{f}" for f in filters]
        return filters

    def match(self, prefix: str, topic: str) -> Matched | None:
        """The first route whose pattern `topic` fits, with the gateway and unit it names."""
        for route in self.routes:
            matched = route.pattern.match(prefix, topic)
            if matched is not None:
                return route, matched[0], matched[1]
        return None

    def route(
        self,
        prefix: str,
        topic: str,
        payload: bytes,
        received_at: datetime,
        counters: IngestCounters,
        cache: TopicCache | None = None,
        defer: bool = False,
    ) -> Inbound[Any] | None:
        """The typed message, or None (logged and counted) for an unknown topic or bad payload.

        `cache` (owned by the caller) remembers what each topic matched: a gateway's few
        topics repeat in every message, and matching one costs more than a lookup. With
        `defer`, a deferrable route's payload is validated up to its envelope only (a bad
        envelope is malformed here, as ever); `complete` does the rest.
        """
        counters.received += 1
        if cache is None:
            found = self.match(prefix, topic)
        else:
            try:
                found = cache[topic]
            except KeyError:
                if len(cache) >= TOPIC_CACHE_MAX:
                    cache.clear()
                found = cache[topic] = self.match(prefix, topic)
        if found is not None:
            route, gw_id, unit = found
            deferred = defer and route.deferrable
            try:
                model: BaseModel = (EnvelopeOnly if deferred else route.model).model_validate_json(
                    payload
                )
            except ValidationError as exc:
                _malformed(counters, route.kind, topic, len(payload), exc)
                return None
            counters.routed[route.kind] += 1
            return Inbound(route, gw_id, unit, model, received_at, payload if deferred else None)
        counters.unknown_topic += 1
        _complain(counters.unknown_topic, "no route for topic %r", topic[:200])
        return None


def complete(message: Inbound[Any], counters: IngestCounters) -> Inbound[Any] | None:
    """`message` with its whole payload validated, or None (logged, counted malformed).

    A message that was never deferred is returned as it is.
    """
    if message.raw is None:
        return message
    route = message.route
    try:
        model = route.model.model_validate_json(message.raw)
    except ValidationError as exc:
        where = f"gateway {message.gw_id} unit {message.unit}"
        _malformed(counters, route.kind, where, len(message.raw), exc)
        return None
    return replace(message, payload=model, raw=None)


def _malformed(counters: IngestCounters, kind: str, topic: str, size: int,
               exc: ValidationError) -> None:  # fmt: skip
    counters.malformed += 1
    _complain(
        counters.malformed,
        "malformed %s on %s (%d bytes): %d errors, first at %s",
        *(kind, topic, size, exc.error_count(), _where(exc)),
    )


def _where(exc: ValidationError) -> str:
    """The location of the first error, without its input value (which may be anything)."""
    errors = exc.errors(include_input=False, include_url=False)
    if not errors:
        return "?"
    first = errors[0]
    return ".".join(str(part) for part in first["loc"]) + f" ({first['type']})"


def _complain(count: int, message: str, *args: object) -> None:
    if count <= LOUD_FIRST or count % LOUD_EVERY == 0:
        log.warning(message + " [%d so far]", *args, count)
    else:
        log.debug(message, *args)
