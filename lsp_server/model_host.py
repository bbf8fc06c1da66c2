"""Owns the engine: loads it in the background, runs every model call on one worker, cancels cooperatively.

The engine is not thread-safe, so one worker thread (jobs.JobQueue) serializes loading and every infill. pygls only
cancels requests that have not started; a denoising run that has started checks its CancelToken between steps
instead, so a newer keystroke or `$/cancelRequest` stops stale work within one step.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

from engine.model_files import check_before_loading
from engine.types import Cancelled, EngineConfig, EngineError, ModelLoadError
from infill import InfillRequest, InfillResult, prime_engine, run_infill

from .jobs import SUPERSEDED, CancelToken, JobQueue

log = logging.getLogger("infill-lsp")

LOAD_KEY = "model-load"
SPECULATION_KEY = "speculation"
RETUNE_KEY = "retune"      # the latest sampling options replace ones not yet applied
PACE_KEY = "pace"
PRIME_KEY = "prime"        # the one prompt being prepared ahead of a request; a newer one replaces it
EXTRA_SEED_RUNS = 2        # an invoke that wants several candidates runs the model at most this many more times
# An explicit request (invoke, command, `fill`) whose every candidate the cleaning refused samples again this many
# times, with seeds after the extra candidates' ones. Typing never retries: there, latency is the point.
REFUSED_RETRIES = 2
LATENCY_WEIGHT = 0.3       # exponential moving average of the model's latency
READY_POLL_S = 0.02        # how often a request waiting for the model to load looks again

__all__ = ["Generated", "ModelHost", "LOAD_KEY", "SPECULATION_KEY"]


@dataclass
class Generated:
    """One model job's outcome for an inline request."""
    result: InfillResult                        # the first (seeded as configured) run
    texts: list[str] = field(default_factory=list)   # distinct non-empty candidates, best first
    cancelled: bool = False                     # superseded or cancelled before it finished
    failed: bool = False                        # the engine raised: no answer for this context, only its message
    model_runs: int = 0                         # run_infill calls that reached the model


class CountedEngine:
    """The engine as run_infill sees it: counts the calls that reach the model, and with a seed gives another
    sample from the same context."""

    def __init__(self, engine, seed: int | None = None) -> None:
        self.engine, self.seed, self.calls = engine, seed, 0

    def _seeded(self, kwargs: dict) -> dict:
        self.calls += 1
        return kwargs if self.seed is None else {**kwargs, "seed": self.seed}

    def fill(self, prefix, suffix, **kwargs):
        return self.engine.fill(prefix, suffix, **self._seeded(kwargs))

    def rewrite(self, prefix, suffix, original, **kwargs):
        return self.engine.rewrite(prefix, suffix, original, **self._seeded(kwargs))

    def __getattr__(self, name):
        return getattr(self.engine, name)


def refused_everything(result: InfillResult) -> bool:
    """The model wrote candidates and the cleaning or the checks refused them all (not a cancelled or failed run,
    nor a request that never reached the model)."""
    details = result.details
    return (not result.text and bool(details.get("candidates")) and bool(details.get("model_calls"))
            and not details.get("cancelled") and not details.get("failed"))


def candidate_texts(result: InfillResult) -> list[str]:
    """The chosen text, then the other cleaned, validated candidates infill/ ranked in details["choices"] (each
    for the same range), without repeats."""
    if not result.text:
        return []
    texts = [result.text]
    for entry in result.details.get("choices") or []:
        text = entry.get("text") if isinstance(entry, dict) else None
        if isinstance(text, str) and text and text not in texts:
            texts.append(text)
    return texts


NO_RUNS = {"runs": 0, "encodeMs": 0.0, "denoiseMs": 0.0, "steps": 0}


def same_engine(loaded: EngineConfig, asked: EngineConfig) -> bool:
    """Whether `asked` needs no new engine beside `loaded`: they differ at most in what the engine takes between
    runs (steps, seed, prefix reuse)."""
    def weights_and_shapes(config: EngineConfig) -> EngineConfig:
        return dataclasses.replace(config, max_steps=None, seed=0, reuse_prefix=True)
    return weights_and_shapes(loaded) == weights_and_shapes(asked)


class ModelHost:
    def __init__(self) -> None:
        self.queue = JobQueue()
        self.engine = None
        self.info: dict = {}
        self.loaded_config: EngineConfig | None = None   # what the engine in memory was loaded with
        self.error: str | None = None
        self.ready = threading.Event()        # set once the latest load finished, successfully or not
        self.latest_load = 0                  # loads asked for so far: only the latest one's end sets `ready`
        self.load_lock = threading.Lock()
        self.latency_s: float | None = None   # moving average of a completed automatic inline model run
        self.model_runs = 0                   # inline/command runs that reached the model (speculation apart)
        # Budget and steps of the latest request that reached the model, and totals over all of them (speculation
        # apart: it runs ahead of the user and would blur what the requests cost).
        self.last_run: dict = {}
        self.run_totals = dict(NO_RUNS)
        self.speculative_runs = 0
        self.primed_prompts = 0               # prompts encoded ahead of the request that reads them (prime)
        self.untold_notes: list[str] = []     # what the engine changed while serving (its fast path failed)

    # ---- loading ------------------------------------------------------------------------------------------------

    def load(self, config: EngineConfig, measure_pace: bool = False) -> Future:
        """Load on the worker thread; requests submitted later queue behind it. `measure_pace`: time a few
        denoising steps at the common shapes, so suggestions with a latency budget plan their steps from the
        first one on (about a second on a CPU; the command line skips it)."""
        with self.load_lock:   # with _load's end: a load ends either before this one is asked for, or superseded
            self.ready.clear()
            self.latest_load += 1
            generation = self.latest_load
        return self.queue.submit(LOAD_KEY, lambda token: self._load(config, measure_pace, generation, token)).future

    def _load(self, config: EngineConfig, measure_pace: bool = False, generation: int | None = None,
              cancel: CancelToken | None = None) -> tuple[dict, str | None] | None:
        """(what was loaded, the error), or None when it stopped half-way: a newer load was asked for meanwhile
        (it runs next and decides the state; this one stops at its next check, before warming up or timing an
        engine nobody will use), or the server is closing. Runs on the worker, so no infill uses the previous
        engine meanwhile."""
        self.ready.clear()  # an earlier load that finished just before this one must not leave "ready" set
        if self.engine is not None and self.loaded_config is not None and same_engine(self.loaded_config, config):
            return self._keep_loaded(config, measure_pace, generation, cancel)
        self.engine, self.error, self.latency_s, self.info = None, None, None, {}
        self.loaded_config = None
        self.last_run, self.run_totals = {}, dict(NO_RUNS)
        stopped = False
        try:
            # A wrong path or folder is said at once, not after the seconds torch and transformers take to import.
            check_before_loading(config)
            from engine import InfillEngine  # torch loads here, off the event loop
            if cancel is not None and cancel():
                raise Cancelled()
            self.engine = InfillEngine(config, cancel=cancel)
            if measure_pace:
                self._measure_pace(cancel)
            self.info = self.engine.describe()   # model, device, parameters: read once for every status
            self.loaded_config = config
        except Cancelled:
            self.engine, stopped = None, True
            self.error = "the model load stopped before it finished"
            log.info("stopped a model load (a newer one replaced it, or the server is closing)")
        except ModelLoadError as exc:
            self.error = str(exc)
        except Exception as exc:  # anything else is still a load failure the user must read, not a crash
            log.exception("model load failed")
            self.error = f"could not load the model: {type(exc).__name__}: {exc}"
        finally:
            if self.engine is None and "torch" in sys.modules:
                # The failed load's tensors are gone with its frames (the handler is left): hand their cached
                # blocks back, or the GPU stays full while the server waits with an error.
                from engine.memory import release_cached_gpu_memory
                release_cached_gpu_memory()
            with self.load_lock:
                superseded = generation is not None and generation != self.latest_load
                if not superseded:   # else "ready" would announce this engine while the user's new options wait
                    self.ready.set()
        return None if superseded or stopped else (dict(self.info), self.error)

    def _keep_loaded(self, config: EngineConfig, measure_pace: bool, generation: int | None,
                     cancel: CancelToken | None) -> tuple[dict, str | None] | None:
        """A load asked for the engine already in memory: a model option changed and back before the load in
        between ran (it waited behind a run). Reading the weights again would cost seconds (minutes for a large
        model) and the run history; the engine takes the new sampling settings instead."""
        self.engine.retune(max_steps=config.max_steps, seed=config.seed, reuse_prefix=config.reuse_prefix)
        self.loaded_config = config
        if measure_pace and not self.engine.pace_ms:
            try:
                self._measure_pace(cancel)
            except Cancelled:
                pass   # a newer load took over; it decides the state
            self.info = self.engine.describe()   # with the steps' pace, as time_steps has it
        with self.load_lock:
            superseded = generation is not None and generation != self.latest_load
            if not superseded:
                self.ready.set()
        log.info("kept the loaded model: the load asked for the same one")
        return None if superseded else (dict(self.info), None)

    def retune(self, config: EngineConfig) -> None:
        """Take `config`'s steps, seed and prefix reuse into the loaded engine, between runs on the worker (a
        load still running finishes first; a failed one leaves nothing to tune, and the next load reads them)."""
        def apply(token: CancelToken) -> None:
            if self.engine is not None:
                self.engine.retune(max_steps=config.max_steps, seed=config.seed, reuse_prefix=config.reuse_prefix)
        self.queue.submit(RETUNE_KEY, apply)

    def time_steps(self) -> None:
        """Time a few denoising steps at the common shapes on the worker, unless the loaded engine already has a
        pace (a latency budget turned on after a load that skipped the timing)."""
        def measure(token: CancelToken) -> None:
            if self.engine is None or self.engine.pace_ms:
                return
            try:
                self._measure_pace(token)
            except Cancelled:
                pass
            self.info = self.engine.describe()
        self.queue.submit(PACE_KEY, measure)

    def _measure_pace(self, cancel: CancelToken | None) -> None:
        """Time the loaded engine's steps. Cancelled passes through; any other failure (e.g. out of memory at a
        wide shape) only costs the plan: budgets then learn from real runs."""
        try:
            self.engine.measure_pace(cancel=cancel)
        except Cancelled:
            raise
        except Exception:
            log.warning("timing the denoising steps failed; budgets learn from real runs", exc_info=True)

    @property
    def state(self) -> str:
        if not self.ready.is_set():
            return "loading"
        return "error" if self.engine is None else "ready"

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait (without blocking the event loop) until loading finished; False on timeout."""
        # Polled, not waited for in a thread: each waiting request would hold one of the executor's few threads
        # for up to `timeout_s`, even after the client gave up on it.
        deadline = time.monotonic() + timeout_s
        while not self.ready.is_set():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(READY_POLL_S)
        return True

    # ---- cancellation -------------------------------------------------------------------------------------------

    def cancel(self, key: str) -> None:
        """Drop the waiting request under `key` and stop the running one at its next step."""
        self.queue.cancel(key)

    def cancel_speculation(self) -> None:
        self.queue.cancel_speculation()

    # ---- running ------------------------------------------------------------------------------------------------

    def run_blocking(self, request: InfillRequest) -> InfillResult:
        """Same path as the server, for the command line."""
        value = self.queue.submit(None, lambda token: self._infill_asked(request, token)).future.result()
        return self._cancelled_result(request) if value is SUPERSEDED else value

    async def run(self, request: InfillRequest, key: str | None) -> InfillResult:
        """One request (fill / rewrite selection); a newer job under the same key supersedes it."""
        job = self.queue.submit(key, lambda token: self._infill_asked(request, token))
        value = await self._wait(job)
        return self._cancelled_result(request) if value is SUPERSEDED else value

    async def complete(self, request: InfillRequest, key: str, candidates: int = 1, seed: int = 0,
                       speculative: bool = False) -> Generated:
        """An inline request: up to `candidates` distinct texts (extra runs with other seeds if infill/ gave
        fewer). Speculative jobs run only while no real job waits."""
        job = self.queue.submit(key, lambda token: self._complete(request, token, candidates, seed, speculative),
                                speculative=speculative)
        value = await self._wait(job)
        if value is SUPERSEDED:
            return Generated(self._cancelled_result(request), cancelled=True)
        return value

    async def prime(self, request: InfillRequest) -> dict:
        """Encode the prompt of an inline request at `request.start` ahead of time. The plan's details, {} when
        it did not run. A real job, not speculation: the request of the same keystroke drops waiting speculation,
        and the encoding it would drop is the one that request needs next; a newer prime replaces it."""
        job = self.queue.submit(PRIME_KEY, lambda token: self._prime(request, token))
        value = await self._wait(job)
        return {} if value is SUPERSEDED else value

    def _prime(self, request: InfillRequest, token: CancelToken) -> dict:
        engine = self.engine
        if engine is None or token():
            return {}
        try:
            details = prime_engine(request, engine, token)
        except Exception:   # an optimisation that failed costs its time, never a request
            log.warning("preparing the prompt ahead of time failed", exc_info=True)
            return {}
        if details:
            self.primed_prompts += 1
        return details

    async def _wait(self, job):
        try:
            return await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            job.cancel()  # the client gave up ($/cancelRequest): stop the denoising loop at its next step
            raise

    @staticmethod
    def _cancelled_result(request: InfillRequest) -> InfillResult:
        return InfillResult("", request.start, request.end, details={"cancelled": True})

    def _complete(self, request: InfillRequest, token: CancelToken, candidates: int, seed: int,
                  speculative: bool) -> Generated:
        started = time.perf_counter()
        if speculative:
            result = self._infill(request, token, speculative=True)
        else:
            result = self._infill_asked(request, token, seed)
        generated = Generated(result, candidate_texts(result), bool(result.details.get("cancelled")),
                              failed=bool(result.details.get("failed")),
                              model_runs=result.details.get("model_calls", 0))
        if generated.cancelled:
            return generated
        # (One automatic run's latency: the debounce and the budget read it. An invoke runs every step without a
        # budget, and samples taken again after a refusal are more than one run: neither is what typing waits for.)
        if generated.model_runs and not (speculative or request.invoked or result.details.get("refused_runs")):
            elapsed = time.perf_counter() - started
            self.latency_s = elapsed if self.latency_s is None else (
                (1 - LATENCY_WEIGHT) * self.latency_s + LATENCY_WEIGHT * elapsed)
        for extra in range(1, EXTRA_SEED_RUNS + 1):
            if len(generated.texts) >= candidates or not result.text:
                break
            if token():   # cut short: cached as an invoke's answer, its one text would stand for several
                generated.cancelled = True
                return generated
            more = self._infill(request, token, seed=seed + extra, speculative=speculative)
            if more.details.get("cancelled"):
                generated.cancelled = True
                return generated
            generated.model_runs += more.details.get("model_calls", 0)
            generated.texts += [t for t in candidate_texts(more) if t not in generated.texts]
        generated.texts = generated.texts[:max(1, candidates)]
        return generated

    def _infill_asked(self, request: InfillRequest, cancel: Callable[[], bool] | None,
                      seed: int | None = None) -> InfillResult:
        """A request, and when the user asked for it (an invoke, a command, `fill`) and the cleaning refused every
        candidate the model wrote (a fill that broke the syntax, an empty one, broken characters), samples again
        with other seeds, up to REFUSED_RETRIES times: one sample's refusal at one place is chance for a small model,
        and the user is waiting for an answer. details["refused_runs"]: the runs whose every candidate was
        refused."""
        result = self._infill(request, cancel)   # the configured seed (`seed`: the options', the same)
        if not (request.invoked or request.mode != "inline"):
            return result
        runs, refused = result.details.get("model_calls", 0), 0
        for retry in range(1, REFUSED_RETRIES + 1):
            if not refused_everything(result) or self.engine is None:
                break
            if cancel is not None and cancel():   # superseded: its refusal is nobody's answer now
                result.details["cancelled"] = True
                break
            refused += 1
            base = self.engine.config.seed if seed is None else seed
            result = self._infill(request, cancel, base + EXTRA_SEED_RUNS + retry)
            runs += result.details.get("model_calls", 0)
        refused += refused_everything(result)
        if runs:
            result.details.update(model_calls=runs, refused_runs=refused)
        return result

    def _infill(self, request: InfillRequest, cancel: Callable[[], bool] | None, seed: int | None = None,
                speculative: bool = False) -> InfillResult:
        empty = InfillResult("", request.start, request.end)
        if cancel is not None and cancel():
            empty.details["cancelled"] = True  # superseded while it waited in the queue
            return empty
        engine = self.engine
        if engine is None:
            empty.message = f"the model is not available: {self.error or 'it is still loading'}"
            return empty
        counted = CountedEngine(engine, seed)
        try:
            result = run_infill(request, counted, cancel)
            result.details["model_calls"] = counted.calls
            if counted.calls and not speculative:
                self._record_run(request, result.details)
            return result
        except Cancelled:
            log.info("stopped a superseded or cancelled request at offset %d", request.start)
            empty.details["cancelled"] = True
            return empty
        except EngineError as exc:
            empty.message = str(exc)
            empty.details["failed"] = True
            return empty
        except Exception as exc:  # a bug below us must cost one suggestion, never the server or the user's text
            log.exception("infill failed")
            empty.message = f"internal error while generating: {type(exc).__name__}: {exc}"
            empty.details["failed"] = True
            return empty
        finally:
            if speculative:
                self.speculative_runs += counted.calls
            else:
                self.model_runs += counted.calls
            if getattr(engine, "fast_path", None) != self.info.get("fast_path"):
                # A compile that failed on a new shape left the plain path serving, with its own context length:
                # the server's reach and status read `info`, and the user is told once.
                self.info = engine.describe()
                self.untold_notes += self.info.get("notes", [])[-1:]

    def take_untold_notes(self) -> list[str]:
        notes, self.untold_notes = self.untold_notes, []
        return notes

    def _record_run(self, request: InfillRequest, details: dict) -> None:
        timings = details.get("timings", {})
        context = details.get("context") or {}
        related = context.get("related") or []
        self.last_run = {"budgetMs": request.budget_ms, "plannedSteps": timings.get("engine_planned_steps"),
                         "relatedFiles": [entry["path"] for entry in related],
                         "earlierCellsChars": context.get("head_chars", 0),
                         "steps": timings.get("engine_steps"), "rows": timings.get("engine_batch"),
                         "engineMs": timings.get("engine_ms"), "promptTokens": timings.get("engine_prompt_tokens"),
                         "reusedTokens": timings.get("engine_reused_prompt_tokens")}
        totals = self.run_totals
        # One assignment: the event loop reads these totals while the worker writes them.
        self.run_totals = {"runs": totals["runs"] + 1,
                           "encodeMs": totals["encodeMs"] + (timings.get("engine_encode_ms") or 0.0),
                           "denoiseMs": totals["denoiseMs"] + (timings.get("engine_denoise_ms") or 0.0),
                           "steps": totals["steps"] + (timings.get("engine_steps") or 0)}

    def run_means(self) -> dict:
        """Mean encoder and denoising time and steps per request that reached the model (speculation apart):
        what prefix reuse and the latency budget change."""
        totals = self.run_totals
        runs = totals["runs"]
        if not runs:
            return {"runs": 0}
        return {"runs": runs, "encodeMs": round(totals["encodeMs"] / runs, 1),
                "denoiseMs": round(totals["denoiseMs"] / runs, 1), "steps": round(totals["steps"] / runs, 1)}

    def close(self, wait: bool = True) -> None:
        self.queue.close(wait)
