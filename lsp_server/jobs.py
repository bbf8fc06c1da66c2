"""The model's job queue: one worker thread, at most one waiting job per key, speculation only when idle.

A key is a document (or one command, or the model load). A newer job under the same key replaces the waiting one
(which resolves to SUPERSEDED at once) and cancels the running one at its next denoising step, so however fast the
user types, a document never has more than one job waiting and one running. Speculative jobs run only while no real
job waits, and any real job cancels them.
"""
from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, InvalidStateError
from typing import Any, Callable

log = logging.getLogger("infill-lsp")


class _Superseded:
    def __repr__(self) -> str:
        return "SUPERSEDED"


SUPERSEDED = _Superseded()   # what a job's future holds when a newer job or close() replaced it before it ran


class CancelToken:
    """The cancel() callable handed to the engine: true once cancelled."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


class Job:
    def __init__(self, key: str, fn: Callable[[CancelToken], Any], speculative: bool) -> None:
        self.key, self.fn, self.speculative = key, fn, speculative
        self.token = CancelToken()
        self.future: Future = Future()

    def cancel(self) -> None:
        self.token.cancel()


def _resolve(job: Job, value: Any) -> None:
    try:
        job.future.set_result(value)
    except InvalidStateError:  # the waiter gave up first (its asyncio side cancelled the future)
        pass


class JobQueue:
    def __init__(self, name: str = "infill-model") -> None:
        self._cond = threading.Condition()
        self._waiting: OrderedDict[str, Job] = OrderedDict()
        self._running: Job | None = None
        self._closed = False
        self._ids = itertools.count()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, key: str | None, fn: Callable[[CancelToken], Any], speculative: bool = False) -> Job:
        """Queue fn(token) under `key` (None: a key of its own, never superseded)."""
        job = Job(key if key is not None else f"job-{next(self._ids)}", fn, speculative)
        replaced: list[Job] = []
        with self._cond:
            if self._closed:
                _resolve(job, SUPERSEDED)
                return job
            previous = self._waiting.pop(job.key, None)
            if previous is not None:
                replaced.append(previous)
            if self._running is not None and (self._running.key == job.key
                                              or (not speculative and self._running.speculative)):
                self._running.cancel()
            if not speculative:  # real work always goes first: drop waiting speculation
                replaced += [self._waiting.pop(k) for k, j in list(self._waiting.items()) if j.speculative]
            self._waiting[job.key] = job
            self._cond.notify()
        # A waiter that gives up ($/cancelRequest cancels its future) takes the job out of the queue at once: it
        # would count as waiting work and keep speculation off until the worker reached and skipped it.
        job.future.add_done_callback(lambda future: self._forget(job) if future.cancelled() else None)
        for old in replaced:
            old.cancel()
            _resolve(old, SUPERSEDED)
        return job

    def cancel(self, key: str) -> None:
        """Drop the waiting job under `key` and stop the running one at its next step."""
        with self._cond:
            waiting = self._waiting.pop(key, None)
            if self._running is not None and self._running.key == key:
                self._running.cancel()
        if waiting is not None:
            waiting.cancel()
            _resolve(waiting, SUPERSEDED)

    def _forget(self, job: Job) -> None:
        with self._cond:
            if self._waiting.get(job.key) is job:
                del self._waiting[job.key]

    def cancel_speculation(self) -> None:
        with self._cond:
            dropped = [self._waiting.pop(k) for k, j in list(self._waiting.items()) if j.speculative]
            if self._running is not None and self._running.speculative:
                self._running.cancel()
        for job in dropped:
            job.cancel()
            _resolve(job, SUPERSEDED)

    def idle(self) -> bool:
        with self._cond:
            return self._running is None and not self._waiting

    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def close(self, wait: bool = True) -> None:
        """Resolve everything waiting, stop the running job at its next step, let the worker exit; `wait`: until
        it has (at most 30 s: a model load cannot stop half-way)."""
        with self._cond:
            self._closed = True
            dropped = list(self._waiting.values())
            self._waiting.clear()
            if self._running is not None:
                self._running.cancel()
            self._cond.notify_all()
        for job in dropped:
            job.cancel()
            _resolve(job, SUPERSEDED)
        # Wait for the worker to leave torch's code: a daemon thread still inside it while the interpreter shuts
        # down aborts the process ("terminate called without an active exception").
        if wait and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _next(self) -> Job | None:
        with self._cond:
            while not self._closed and not self._waiting:
                self._cond.wait()
            if self._closed:
                return None
            real = next((k for k, j in self._waiting.items() if not j.speculative), None)
            job = self._waiting.pop(real if real is not None else next(iter(self._waiting)))
            self._running = job
            return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            try:
                if job.future.set_running_or_notify_cancel():
                    try:
                        job.future.set_result(job.fn(job.token))
                    except BaseException as exc:  # the waiter reads it; the worker must live on
                        log.exception("model job %s failed", job.key)
                        job.future.set_exception(exc)
            finally:
                with self._cond:
                    self._running = None
