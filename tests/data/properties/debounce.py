"""Adaptive debounce: how long an automatic inline request waits before it takes the model.

The wait follows the user's own typing rhythm (the median of their recent inter-key intervals) and the model's
measured latency: a fast typist with a slow model gets a short quiet period after their last key, so the model does
not start work the next key would throw away; a model that answers before the next key would arrive gets no wait
at all; an explicit invoke never waits.
"""
from __future__ import annotations

from collections import deque
from statistics import median

PAUSE_S = 1.0              # a gap longer than this is a pause, not part of the typing rhythm
DEFAULT_INTERVAL_S = 0.12  # until a few intervals were seen: about 8 keys/s
MIN_SAMPLES = 3
HISTORY = 24               # intervals remembered per document
QUIET_FACTOR = 1.5         # wait until this many typical intervals passed since the last key ...
MIN_QUIET_S = 0.02
MAX_QUIET_S = 0.35         # ... but never longer than this


class TypingRhythm:
    """Keystroke times of one document (monotonic seconds)."""

    def __init__(self) -> None:
        self.intervals: deque[float] = deque(maxlen=HISTORY)
        self.last_key: float | None = None

    def keystroke(self, now: float) -> None:
        if self.last_key is not None and 0.0 <= now - self.last_key <= PAUSE_S:
            self.intervals.append(now - self.last_key)
        self.last_key = now

    def typical_interval(self) -> float:
        if len(self.intervals) < MIN_SAMPLES:
            return DEFAULT_INTERVAL_S
        return median(self.intervals)


def debounce_delay(rhythm: TypingRhythm | None, now: float, model_latency_s: float | None,
                   invoked: bool) -> float:
    """Seconds an inline request arriving at `now` should wait before it asks the model (0 = go now)."""
    if invoked or rhythm is None or rhythm.last_key is None:
        return 0.0
    since_key = now - rhythm.last_key
    if since_key >= PAUSE_S:
        return 0.0  # the user has already paused
    typical = rhythm.typical_interval()
    if model_latency_s is not None and model_latency_s <= typical / 2:
        return 0.0  # the answer comes before the next key would: answer every key
    quiet = min(max(QUIET_FACTOR * typical, MIN_QUIET_S), MAX_QUIET_S)
    if model_latency_s is not None:
        # A job the next key cancels wastes at most about the model's latency; waiting longer than that costs
        # the user more than it saves.
        quiet = min(quiet, max(model_latency_s, MIN_QUIET_S))
    return max(0.0, quiet - since_key)
