"""Owns the engine: loads it once in the background, runs every model call on one worker thread, cancels cooperatively.

pygls only cancels requests that have not started; a denoising run that has started checks its CancelToken between
steps instead, so a newer keystroke or `$/cancelRequest` stops stale work within one step.
"""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from engine.types import EngineConfig, EngineError, ModelLoadError
from infill import InfillRequest, InfillResult, run_infill


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


class ModelHost:
    def __init__(self) -> None:
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infill-model")
        self.engine = None
        self.error: str | None = None
        self.loaded = threading.Event()       # set once loading finished, successfully or not
        self.latest: dict[str, CancelToken] = {}

    def load(self, config: EngineConfig) -> Future:
        """Start loading on the worker thread; requests queue behind it."""
        self.loaded.clear()
        self.engine, self.error = None, None
        return self.worker.submit(self._load, config)

    def _load(self, config: EngineConfig) -> None:
        try:
            from engine import InfillEngine  # torch loads here, off the event loop
            self.engine = InfillEngine(config)
        except ModelLoadError as exc:
            self.error = str(exc)
        except Exception as exc:  # anything else is still a load failure the user must read, not a crash
            self.error = f"could not load the model: {type(exc).__name__}: {exc}"
        finally:
            self.loaded.set()

    def new_token(self, key: str | None) -> CancelToken:
        """A token for a new request; with a key, the previous request under that key is cancelled."""
        token = CancelToken()
        if key is not None:
            previous = self.latest.get(key)
            if previous is not None:
                previous.cancel()
            self.latest[key] = token
        return token

    def run_blocking(self, request: InfillRequest, cancel: Callable[[], bool] | None = None) -> InfillResult:
        """Same path as the server, for the command line."""
        return self.worker.submit(self._infill, request, cancel).result()

    async def run(self, request: InfillRequest, cancel: CancelToken) -> InfillResult:
        future = self.worker.submit(self._infill, request, cancel)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.cancel()  # the client gave up: stop the denoising loop at its next step
            raise

    def _infill(self, request: InfillRequest, cancel: Callable[[], bool] | None) -> InfillResult:
        empty = InfillResult("", request.start, request.end)
        if cancel is not None and cancel():
            empty.details["cancelled"] = True
            return empty
        if self.engine is None:
            empty.message = f"the model is not available: {self.error or 'still loading'}"
            return empty
        from engine.types import Cancelled
        try:
            return run_infill(request, self.engine, cancel)
        except Cancelled:
            empty.details["cancelled"] = True
            return empty
        except EngineError as exc:
            empty.message = str(exc)
            return empty
