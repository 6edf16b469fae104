"""Event-sourcing base types in pydantic v2: events with explicit topics and class versions, typed snapshots.

An aggregate is a pydantic model holding its state; its events are frozen pydantic models nested in it. Stored
state is the event's JSON without originator id and version (the store keeps those in their own columns), with
`"_v"` added when the class version is above 1 so that old records are upcast on the way in.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from copy import deepcopy
from datetime import date, datetime, timezone
from decimal import Decimal
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, ClassVar, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, PrivateAttr
from pydantic._internal._model_construction import init_private_attributes
from pydantic._internal._utils import smart_deepcopy
from pydantic_core import from_json

# json.dumps with these options, without building an encoder per call (three stored events per journal record).
CANONICAL_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
# Its C encoder built once rather than per call (JSONEncoder.encode builds one each time); no circular-reference
# markers: what it encodes is model_dump(mode="json") output, plain trees. Same text as CANONICAL_JSON.encode.
_canonical_iterencode = (
    c_make_encoder(None, CANONICAL_JSON.default, encode_basestring, None, ":", ",", True, False, True)
    if c_make_encoder is not None
    else None
)


def canonical_json(value: Any) -> str:
    """CANONICAL_JSON.encode(value): sorted keys, compact separators, UTF-8 text not escaped."""
    if _canonical_iterencode is None or isinstance(value, str):
        return CANONICAL_JSON.encode(value)
    return "".join(_canonical_iterencode(value, 0))


def load_state(state: bytes) -> Any:
    """json.loads(state) of a stored state, at about half its cost: pydantic-core's parser, which reads the UTF-8
    bytes without decoding them to a str first. Where it accepts the bytes, json.loads gives the same value (tested
    over odd bytes and generated JSON); what it refuses (a BOM, UTF-16, a lone surrogate, nesting deeper than 200,
    anything invalid) goes through json.loads, for its result or its error."""
    try:
        return from_json(state)
    except ValueError:
        return json.loads(state)


def json_data(model: BaseModel) -> Any:
    """model.model_dump(mode="json"), without model_dump's handling of its keywords (about 4,700 instructions a
    call): an import dumps every record once for its digest and every event once for its state."""
    return model.__pydantic_serializer__.to_python(model, mode="json")


_TOPICS: dict[str, type["Event"]] = {}
_OWNERS: dict[type["Event"], type["Aggregate"]] = {}
_set = object.__setattr__
# Defaults that model_construct would hand out as they are (smart_deepcopy returns them, or an equal immutable).
_SHARED_DEFAULT_TYPES = (type(None), bool, int, float, str, bytes, Decimal, date, datetime, UUID)
_IMMUTABLE_TYPES = frozenset(_SHARED_DEFAULT_TYPES)
_BLANK_PLANS: dict[type, list[tuple[str, Any, bool]] | bool] = {}
_BLANK_PRIVATE: dict[type, list[tuple[str, Callable[[], Any]]]] = {}


class UnknownTopic(LookupError):
    """A stored record whose topic no class claims."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def class_for_topic(topic: str) -> type["Event"]:
    try:
        return _TOPICS[topic]
    except KeyError:
        raise UnknownTopic(f"no event class has topic {topic!r}") from None


class TrustedModel(BaseModel):
    """A model that our own code may also build from values already validated, skipping validation."""

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """An instance built by our own code from values already validated (never from stored or journal JSON as
        such).

        Skips pydantic validation; the instance is the one validation would return for these values (same
        fields set, same dump): every field must be given, each already of its field's type.
        """
        fields = cls.__pydantic_fields__
        if len(values) != len(fields):
            raise TypeError(f"{cls.__qualname__}.trusted needs exactly the fields {sorted(fields)}")
        state = {name: values[name] for name in fields}  # KeyError names a missing field
        instance = cls.__new__(cls)
        _set(instance, "__dict__", state)
        _set(instance, "__pydantic_fields_set__", set(state))
        _set(instance, "__pydantic_extra__", None)
        _set(instance, "__pydantic_private__", None)
        return instance


class Event(TrustedModel):
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
            aggregate = _OWNERS[type(self)]._blank()
            aggregate.__dict__["id"] = self.originator_id
            aggregate.__dict__["created_on"] = self.timestamp
            aggregate.__pydantic_fields_set__.update(("id", "created_on"))
        elif self.originator_version != aggregate.version + 1:
            raise ValueError(
                f"event version {self.originator_version} does not follow aggregate version {aggregate.version}"
            )
        self.apply(aggregate)
        # What set_fields does, without building a keyword dict: this runs for every event.
        state = aggregate.__dict__
        state["version"] = self.originator_version
        state["modified_on"] = self.timestamp
        aggregate.__pydantic_fields_set__.update(("version", "modified_on"))
        return aggregate

    def to_state(self) -> bytes:
        """The bytes stored for this event (hashed into the log exactly as stored)."""
        state = json_data(self)  # then drop the two fields: cheaper than pydantic's exclude
        del state["originator_id"], state["originator_version"]
        if self.CLASS_VERSION > 1:
            state["_v"] = self.CLASS_VERSION
        return canonical_json(state).encode("utf-8")

    @classmethod
    def upcast_state(cls, data: dict) -> dict:
        """A decoded stored state (without the id fields) brought to this class's current version."""
        version = data.pop("_v", 1)
        while version < cls.CLASS_VERSION:
            data = getattr(cls, f"upcast_v{version}_v{version + 1}")(data)
            version += 1
        return data

    @classmethod
    def from_state(cls, originator_id: UUID, originator_version: int, state: bytes) -> Self:
        data = cls.upcast_state(load_state(state))
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

    @classmethod
    def _blank(cls) -> Self:
        """`model_construct()` (every field its default, none set, private attributes initialised), without its
        per-field alias and default resolution: every aggregate of a batch starts here."""
        plan = _BLANK_PLANS.get(cls)
        if plan is None:
            plan = _BLANK_PLANS[cls] = _blank_plan(cls)
        if plan is False:
            return cls.model_construct()
        aggregate = cls.__new__(cls)
        _set(aggregate, "__dict__", {n: d if shared else smart_deepcopy(d) for n, d, shared in plan})
        _set(aggregate, "__pydantic_fields_set__", set())
        _set(aggregate, "__pydantic_extra__", None)
        _set(aggregate, "__pydantic_private__", {n: factory() for n, factory in _BLANK_PRIVATE[cls]})
        return aggregate

    def trigger(
        self, event_class: type[Event], *, at: datetime | None = None, trusted: bool = False, **fields: Any
    ) -> Event:
        """Record a new event; `trusted` builds it with Event.trusted (values our code made from validated ones)."""
        if _OWNERS.get(event_class) is not type(self):
            raise TypeError(f"{event_class.__qualname__} is not an event of {type(self).__qualname__}")
        event = (event_class.trusted if trusted else event_class)(
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=at or utc_now(),
            **fields,
        )
        event.mutate(self)
        self.__pydantic_private__["_pending"].append(event)  # self._pending, without BaseModel.__getattr__
        return event

    @classmethod
    def create(
        cls, aggregate_id: UUID, event_class: type[Event], *, at: datetime | None = None, trusted: bool = False,
        **fields: Any,
    ) -> Self:
        if _OWNERS.get(event_class) is not cls:
            raise TypeError(f"{event_class.__qualname__} is not an event of {cls.__qualname__}")
        event = (event_class.trusted if trusted else event_class)(
            originator_id=aggregate_id, originator_version=1, timestamp=at or utc_now(), **fields
        )
        aggregate = event.mutate(None)
        aggregate.__pydantic_private__["_pending"].append(event)
        return aggregate

    def set_fields(self, **values: Any) -> None:
        """Assign fields as pydantic's __setattr__ does (no validate_assignment), without its dispatch per field:
        events applied once per imported record use this."""
        self.__dict__.update(values)
        self.__pydantic_fields_set__.update(values)

    def collect_events(self) -> list[Event]:
        private = self.__pydantic_private__
        events, private["_pending"] = private["_pending"], []
        return events

    def has_pending(self) -> bool:
        """Whether events were triggered since the last collect_events."""
        return bool(self.__pydantic_private__["_pending"])

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        """A copy whose changes never reach this aggregate, sharing what cannot change: frozen models (policies,
        posting lines, keys, officials, events; no code changes the lists they hold) and scalars. The repository
        cache hands each command such a copy of the Ledger and the Period; copying every frozen model in them, as
        pydantic's deepcopy does, took about a fifth of the time of posting one voucher, and more as the Ledger
        grew."""
        if memo is None:
            memo = {}
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        _set(copied, "__dict__", {name: _state_copy(value, memo) for name, value in self.__dict__.items()})
        _set(copied, "__pydantic_extra__", _state_copy(self.__pydantic_extra__, memo))
        _set(copied, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        _set(copied, "__pydantic_private__", _state_copy(self.__pydantic_private__, memo))
        return copied


def _state_copy(value: Any, memo: dict[int, Any]) -> Any:
    """deepcopy(value, memo), except that frozen models and scalars are shared rather than copied."""
    kind = type(value)
    if kind in _IMMUTABLE_TYPES:
        return value
    if kind is list or kind is dict:
        copied = memo.get(id(value))
        if copied is None:
            if kind is list:
                copied = memo[id(value)] = []
                copied.extend(_state_copy(item, memo) for item in value)
            else:
                copied = memo[id(value)] = {}
                for key, item in value.items():
                    copied[key] = _state_copy(item, memo)
        return copied
    if isinstance(value, BaseModel) and value.model_config.get("frozen"):
        return value
    return deepcopy(value, memo)


def _blank_plan(cls: type[Aggregate]) -> list[tuple[str, Any, bool]] | bool:
    """(name, default, shared) per field for Aggregate._blank, or False where only model_construct will do."""
    # pydantic's post-init of an aggregate subclass wraps its base's, which initialises private attributes only.
    post_init = inspect.unwrap(cls.model_post_init)
    if cls.__pydantic_post_init__ and getattr(post_init, "__code__", None) is not init_private_attributes.__code__:
        return False
    if any(p.default_factory_takes_validated_data for p in cls.__private_attributes__.values()):
        return False
    private = []
    for name, attribute in cls.__private_attributes__.items():
        if attribute.default_factory is None:
            return False
        private.append((name, attribute.default_factory))
    _BLANK_PRIVATE[cls] = private
    plan = []
    for name, info in cls.__pydantic_fields__.items():
        if info.is_required() or info.default_factory is not None or info.alias not in (None, name) or info.validation_alias:
            return False
        plan.append((name, info.default, isinstance(info.default, _SHARED_DEFAULT_TYPES)))
    return plan


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
