"""Owns the engine: loads it in the background, runs every model call on one worker thread, cancels cooperatively.

The engine is not thread-safe, so one worker thread serializes loading and every infill. pygls only cancels
requests that have not started; a denoising run that has started checks its CancelToken between steps instead,
so a newer keystroke or `$/cancelRequest` stops stale work within one step.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from engine.types import Cancelled, EngineConfig, EngineError, ModelLoadError
from infill import InfillRequest, InfillResult, run_infill

log = logging.getLogger("infill-lsp")


class CancelToken:
    """The cancel() callable handed to the engine: true once cancelled."""

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
        self.ready = threading.Event()        # set once the latest load finished, successfully or not
        self._latest: dict[str, CancelToken] = {}
        self._lock = threading.Lock()

    # ---- loading ------------------------------------------------------------------------------------------------

    def load(self, config: EngineConfig) -> Future:
        """Load on the worker thread; requests submitted later queue behind it."""
        self.ready.clear()
        return self.worker.submit(self._load, config)

    def _load(self, config: EngineConfig) -> None:
        # Runs on the worker, so no infill can be using the previous engine while it is replaced.
        self.engine, self.error = None, None
        try:
            from engine import InfillEngine  # torch loads here, off the event loop
            self.engine = InfillEngine(config)
        except ModelLoadError as exc:
            self.error = str(exc)
        except Exception as exc:  # anything else is still a load failure the user must read, not a crash
            log.exception("model load failed")
            self.error = f"could not load the model: {type(exc).__name__}: {exc}"
        finally:
            self.ready.set()

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait (without blocking the event loop) until loading finished; False on timeout."""
        if self.ready.is_set():
            return True
        return await asyncio.get_running_loop().run_in_executor(None, self.ready.wait, timeout_s)

    # ---- cancellation -------------------------------------------------------------------------------------------

    def new_token(self, key: str | None = None) -> CancelToken:
        """A token for a new request; under a key (a document), the previous request's token is cancelled."""
        token = CancelToken()
        if key is not None:
            with self._lock:
                previous = self._latest.get(key)
                self._latest[key] = token
            if previous is not None:
                previous.cancel()
        return token

    def cancel(self, key: str) -> None:
        """Cancel the running request under `key`, if any."""
        with self._lock:
            token = self._latest.pop(key, None)
        if token is not None:
            token.cancel()

    def release(self, key: str, token: CancelToken) -> None:
        with self._lock:
            if self._latest.get(key) is token:
                del self._latest[key]

    def cancel_all(self) -> None:
        with self._lock:
            tokens = list(self._latest.values())
        for token in tokens:
            token.cancel()

    # ---- running ------------------------------------------------------------------------------------------------

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
            empty.details["cancelled"] = True  # superseded while it waited in the queue
            return empty
        engine = self.engine
        if engine is None:
            empty.message = f"the model is not available: {self.error or 'it is still loading'}"
            return empty
        try:
            return run_infill(request, engine, cancel)
        except Cancelled:
            log.info("stopped a superseded or cancelled request at offset %d", request.start)
            empty.details["cancelled"] = True
            return empty
        except EngineError as exc:
            empty.message = str(exc)
            return empty
        except Exception as exc:  # a bug below us must cost one suggestion, never the server or the user's text
            log.exception("infill failed")
            empty.message = f"internal error while generating: {type(exc).__name__}: {exc}"
            return empty

    def close(self) -> None:
        self.cancel_all()
        self.worker.shutdown(wait=False, cancel_futures=True)
