"""Local counters and the status object behind `infill.status` and the `diffusionInfill/status` notification.

Nothing here leaves the machine except through the editor's own connection to this server.

The status object (a contract with the editor clients, keep it exactly):
    {"state": "loading" | "ready" | "error", "model": str | null, "device": str | null, "message": str | null,
     "lastLatencyMs": number | null, "lastModelLatencyMs": number | null,
     "lastAnswerSource": "model" | "speculation" | "cache" | "typed-through" | null,
     "counters": {name: int for name in COUNTERS}}
"""
from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import asdict, dataclass

KNOWN_IDS = 4096   # suggestion ids remembered for display, accept and reject signals


@dataclass
class Counters:
    requests: int = 0       # inline completion requests received
    cancelled: int = 0      # ... superseded by a newer request or keystroke, or cancelled by the client
    answered: int = 0       # ... answered with at least one item
    empty: int = 0          # ... answered with no item (nothing to offer, or a problem reported: also refused)
    typedThrough: int = 0   # answers cut from the shown suggestion the user is typing through (no model)
    cacheHits: int = 0      # answers from the cache of recent results (no model)
    speculated: int = 0     # next suggestions computed ahead of time, as if the current one were accepted
    shown: int = 0          # suggestions sent to the editor to show (their rests typed through not again)
    displayed: int = 0      # items the editor reported on screen (diffusionInfill/didShowCompletion), once each
    accepted: int = 0       # items the editor reported accepted (infill.accepted)
    rejected: int = 0       # items the editor reported rejected (infill.rejected)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


COUNTERS = tuple(Counters().as_dict())
ANSWER_SOURCES = ("model", "speculation", "cache", "typed-through")   # where an inline answer came from


@dataclass
class LastAnswer:
    """The latest inline answer. A cache or typed-through answer takes a few milliseconds, so the model's own time
    is kept apart: the latest answer that ran the model for its request."""
    latency_ms: float | None = None         # request to answer, whatever answered it
    source: str | None = None               # one of ANSWER_SOURCES ("speculation": adopted from one running ahead)
    model_latency_ms: float | None = None   # request to answer, for the latest "model" answer

    def record(self, source: str, latency_ms: float) -> None:
        self.latency_ms, self.source = latency_ms, source
        if source == "model":
            self.model_latency_ms = latency_ms


def status_object(state: str, model: str | None, device: str | None, message: str | None,
                  last: LastAnswer, counters: Counters) -> dict:
    return {"state": state, "model": model, "device": device, "message": message,
            "lastLatencyMs": rounded(last.latency_ms), "lastModelLatencyMs": rounded(last.model_latency_ms),
            "lastAnswerSource": last.source, "counters": counters.as_dict()}


def rounded(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 1)


class SuggestionIds:
    """Ids for offered items, so that a display, an accept or a reject is counted once, and only for an item we
    offered."""

    def __init__(self, capacity: int = KNOWN_IDS) -> None:
        self.capacity = capacity
        self._next = itertools.count(1)
        self._open: OrderedDict[str, bool] = OrderedDict()   # id -> displayed already

    def new(self) -> str:
        suggestion_id = f"s{next(self._next)}"
        self._open[suggestion_id] = False
        while len(self._open) > self.capacity:
            self._open.popitem(last=False)
        return suggestion_id

    def display(self, suggestion_id) -> bool:
        """True the first time an offered, unsettled id is reported on screen; False for unknown or repeated ids."""
        if not isinstance(suggestion_id, str) or self._open.get(suggestion_id, True):
            return False
        self._open[suggestion_id] = True
        return True

    def settle(self, suggestion_id) -> bool:
        """True the first time an offered id is accepted or rejected; False for unknown or repeated ids."""
        if not isinstance(suggestion_id, str) or suggestion_id not in self._open:
            return False
        del self._open[suggestion_id]
        return True


def suggestion_id_of(args) -> str | None:
    """The id from command arguments [{"id": ...}], ["id"] or notification params {"id": ...}."""
    if type(args) in (list, tuple) and len(args) == 1:   # not a notification's object (a namedtuple: one field)
        args = args[0]
    if isinstance(args, dict):
        args = args.get("id")
    elif hasattr(args, "id") and not isinstance(args, str):  # pygls hands custom notifications over as objects
        args = getattr(args, "id")
    return args if isinstance(args, str) else None
