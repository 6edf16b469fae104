"""Event-sourcing base types in pydantic v2: events with explicit topics and class versions, typed snapshots.

An aggregate is a pydantic model holding its state; its events are frozen pydantic models nested in it. Stored
state is the event's JSON without originator id and version (the store keeps those in their own columns), with
`"_v"` added when the class version is above 1 so that old records are upcast on the way in.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, ClassVar, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, PrivateAttr

# json.dumps with these options, without building an encoder per call (three stored events per journal record).
CANONICAL_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)

_TOPICS: dict[str, type["Event"]] = {}
_OWNERS: dict[type["Event"], type["Aggregate"]] = {}


class UnknownTopic(LookupError):
    """A stored record whose topic no class claims."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def class_for_topic(topic: str) -> type["Event"]:
    try:
        return _TOPICS[topic]
    except KeyError:
        raise UnknownTopic(f"no event class has topic {topic!r}") from None


class Event(BaseModel):
    """A domain event: something that happened to one aggregate, at one version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TOPIC: ClassVar[str] = ""
    CLASS_VERSION: ClassVar[int] = 1

    originator_id: UUID
    originator_version: int
    timestamp: datetime

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.TOPIC or "TOPIC" not in cls.__dict__:
            return  # abstract intermediate class
        if cls.TOPIC in _TOPICS and _TOPICS[cls.TOPIC] is not cls:
            raise TypeError(f"topic {cls.TOPIC!r} is claimed by {_TOPICS[cls.TOPIC].__qualname__} and {cls.__qualname__}")
        _TOPICS[cls.TOPIC] = cls

    def apply(self, aggregate: Any) -> None:
        """Change the aggregate's state; creation events are applied to a blank instance."""

    def mutate(self, aggregate: "Aggregate | None") -> "Aggregate":
        if aggregate is None:
            aggregate = _OWNERS[type(self)].model_construct()
            aggregate.id = self.originator_id
            aggregate.created_on = self.timestamp
        elif self.originator_version != aggregate.version + 1:
            raise ValueError(
                f"event version {self.originator_version} does not follow aggregate version {aggregate.version}"
            )
        self.apply(aggregate)
        aggregate.version = self.originator_version
        aggregate.modified_on = self.timestamp
        return aggregate

    def to_state(self) -> bytes:
        """The bytes stored for this event (hashed into the log exactly as stored)."""
        state = self.model_dump(mode="json", exclude={"originator_id", "originator_version"})
        if self.CLASS_VERSION > 1:
            state["_v"] = self.CLASS_VERSION
        return CANONICAL_JSON.encode(state).encode("utf-8")

    @classmethod
    def from_state(cls, originator_id: UUID, originator_version: int, state: bytes) -> Self:
        data = json.loads(state)
        version = data.pop("_v", 1)
        while version < cls.CLASS_VERSION:
            data = getattr(cls, f"upcast_v{version}_v{version + 1}")(data)
            version += 1
        data["originator_id"] = originator_id
        data["originator_version"] = originator_version
        return cls.model_validate(data)


class Aggregate(BaseModel):
    """An event-sourced aggregate: state changes only by triggering its own events."""

    model_config = ConfigDict(validate_assignment=False, extra="forbid")

    id: UUID | None = None
    version: int = 0
    created_on: datetime | None = None
    modified_on: datetime | None = None
    _pending: list[Event] = PrivateAttr(default_factory=list)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for value in vars(cls).values():
            if isinstance(value, type) and issubclass(value, Event) and value.TOPIC:
                _OWNERS[value] = cls

    def trigger(self, event_class: type[Event], *, at: datetime | None = None, **fields: Any) -> Event:
        if _OWNERS.get(event_class) is not type(self):
            raise TypeError(f"{event_class.__qualname__} is not an event of {type(self).__qualname__}")
        event = event_class(
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=at or utc_now(),
            **fields,
        )
        event.mutate(self)
        self._pending.append(event)
        return event

    @classmethod
    def create(cls, aggregate_id: UUID, event_class: type[Event], *, at: datetime | None = None, **fields: Any) -> Self:
        if _OWNERS.get(event_class) is not cls:
            raise TypeError(f"{event_class.__qualname__} is not an event of {cls.__qualname__}")
        event = event_class(originator_id=aggregate_id, originator_version=1, timestamp=at or utc_now(), **fields)
        aggregate = event.mutate(None)
        aggregate._pending.append(event)
        return aggregate

    def collect_events(self) -> list[Event]:
        events, self._pending = self._pending, []
        return events


class Snapshot(Event):
    """A typed snapshot: the aggregate's whole state at one version, stored in the snapshot table, never logged."""

    TOPIC: ClassVar[str] = ""
    aggregate_topic: str
    state: dict[str, Any]

    @classmethod
    def take(cls, aggregate: Aggregate) -> "Snapshot":
        return AggregateSnapshot(
            originator_id=aggregate.id,
            originator_version=aggregate.version,
            timestamp=utc_now(),
            aggregate_topic=_AGGREGATE_TOPICS_BY_CLASS[type(aggregate)],
            state=aggregate.model_dump(mode="json"),
        )

    def mutate(self, aggregate: Aggregate | None) -> Aggregate:
        aggregate_class = _AGGREGATE_CLASSES[self.aggregate_topic]
        return aggregate_class.model_validate(self.state)


class AggregateSnapshot(Snapshot):
    TOPIC: ClassVar[str] = "ledger/Snapshot"


_AGGREGATE_CLASSES: dict[str, type[Aggregate]] = {}
_AGGREGATE_TOPICS_BY_CLASS: dict[type[Aggregate], str] = {}


def register_aggregate(topic: str):
    """Give an aggregate class an explicit topic, used for its snapshots."""

    def decorate(cls: type[Aggregate]) -> type[Aggregate]:
        _AGGREGATE_CLASSES[topic] = cls
        _AGGREGATE_TOPICS_BY_CLASS[cls] = topic
        return cls

    return decorate
