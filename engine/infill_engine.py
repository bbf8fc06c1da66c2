"""InfillEngine: text in, candidate middles out. Owns the model, the FIM layout and the length plan's canvas."""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import threading
import time
from typing import Callable

import torch
from transformers.cache_utils import DynamicCache

from .compat import with_cache
from .fast_path import StaticPrompt, bind, compile_step, cuda_graphs_fit, static_scored_step
from .loading import MIN_PROMPT_TOKENS, LoadedModel, end_of_text_id, load, memory_advice, usable_cores
from .memory import out_of_memory, reporting_out_of_memory
from .masks import decoder_cache, decoder_masks, encoder_masks, for_attention, full_dynamic_cache, sliding_window_of
from .prompt import encode_text, prefix_room, trim_context
from .quantize import weight_bytes
from .sampler import MIN_BUDGET_STEPS, Generators, SamplerSettings, denoise, renoise, row_generators, token_rows
from .types import Cancelled, Candidate, Candidates, EngineConfig, EngineError, ModelLoadError

log = logging.getLogger(__name__)
CANVAS_BUCKETS = (16, 32, 64, 128, 256)  # few distinct shapes: compiled steps and caches get reused
FIM_TOKENS = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
PINNED_SUFFIX_TOKENS = 8  # suffix-pinned layout: how many suffix tokens follow the middle on the canvas
# The common plans, as (rows, longest length limit): single-line (3 candidates up to 32 tokens) and multi-line (2 up
# to 64). Their canvas shapes, and the same canvases with one row (a latency budget too short for candidates, and
# rewrites), are compiled at load (InfillEngine.warm_shapes): in the suffix-pinned layout the pinned suffix tokens
# make each canvas a bucket larger.
WARM_PLANS = ((3, 32), (2, 64))
# A fill with a latency budget: fewer denoising steps than this and the length candidates give way to one row (the
# longest limit, which can still end early with <eos>); fewer than MIN_BUDGET_STEPS are never planned.
ROWS_NEED_STEPS = 8
PACE_PROMPT_TOKENS = 2048   # the longest prompt measure_pace times its steps with
PACE_WEIGHT = 0.3         # moving average of the measured milliseconds per step, per (rows, canvas) shape


def compiler_error(failure: BaseException) -> BaseException:
    """The compiler's own error inside torch.compile's wrapper of it (kept as inner_exception, raised `from None`)."""
    while (inner := getattr(failure, "inner_exception", None) or failure.__cause__) is not None:
        failure = inner
    return failure


def fresh_prefix_stats() -> dict:
    return {"prompt_tokens": 0, "reused_tokens": 0, "last_reused": 0}


def bucket(length: int, limit: int, readable: tuple[int, ...] = ()) -> int:
    """The canvas for `length` tokens: the smallest bucket that holds them, at most `limit`. `readable`: the only
    lengths the model reads well, when its checkpoint says (the starter, trained on 64 only, reads a 16-token canvas
    worse than unigram: bench/RESULTS.md), else any bucket."""
    for size in readable or CANVAS_BUCKETS:
        if size >= length:
            return min(size, limit)
    return limit


def default_steps(device: torch.device) -> int:
    """48 on a GPU (the model card's cap); 24 on a CPU, where each step costs tens of milliseconds."""
    return 48 if device.type == "cuda" else 24


class InfillEngine:
    def __init__(self, config: EngineConfig | None = None, loaded: LoadedModel | None = None,
                 cancel: Callable[[], bool] | None = None):
        """`cancel`: checked between the files of a hub download, after loading and between warm-up steps; raises
        Cancelled when it turns true (a newer load was asked for, so the rest would be wasted)."""
        self.config = config or EngineConfig()
        self.loaded = loaded or load(self.config, cancel)
        if cancel is not None and cancel():
            raise Cancelled()
        self.model = self.loaded.model
        self.tokenizer = self.loaded.tokenizer
        self.device = self.loaded.device
        self.vocab_size = self.model.config.text_config.vocab_size
        self.eos_id = end_of_text_id(self.tokenizer, self.model.config, self.loaded.source)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_id
        # Code text never holds a special token (encode_text splits `<eos>` written in code into text pieces), so
        # a special token the model writes (end, pad, a FIM sentinel, <bos>, <mask>) ends the middle there.
        self.end_ids = {self.eos_id, self.pad_id, *self.tokenizer.all_special_ids}
        vocab = self.tokenizer.get_vocab()
        self.fim_ids = [vocab[t] for t in FIM_TOKENS] if all(t in vocab for t in FIM_TOKENS) else None
        # With FIM sentinels the suffix goes in the prompt (suffix first by default, so the prefix ends right where
        # the canvas begins); without them it is pinned on the canvas after the middle.
        self.layout = f"{self.loaded.fim_order}-sentinels" if self.fim_ids else "suffix-pinned"
        if self.config.max_steps is None:
            self.config = dataclasses.replace(self.config, max_steps=default_steps(self.device))
        if self.config.max_steps < 1:
            raise EngineError(f"max_steps must be at least 1, not {self.config.max_steps}")
        if self.config.noise == "auto":  # what the checkpoint was trained with (diffusion_infill.json)
            self.config = dataclasses.replace(self.config, noise=self.loaded.noise)
        if self.config.noise not in ("uniform", "masked") or self.config.acceptance not in ("entropy-bound",
                                                                                              "confidence"):
            raise EngineError(f"unknown noise '{self.config.noise}' or acceptance '{self.config.acceptance}'")
        if getattr(self.model.config.text_config, "use_bidirectional_attention", None) == "all":
            # The engine's encoder is causal (engine/masks.py); such a checkpoint's prompt would be read wrongly.
            raise EngineError("this checkpoint's encoder attends both ways (use_bidirectional_attention: all), "
                              "which this engine does not support")
        self.mask_id = None
        if self.config.noise == "masked":
            self.mask_id = self.tokenizer.mask_token_id
            if self.mask_id is None:
                raise EngineError("masked noise needs a <mask> token, and this tokenizer has none")
        self.bos_id = self.tokenizer.bos_token_id
        self._check_special_ids()
        self.lock = threading.Lock()  # one denoising run at a time: the model and its caches are shared
        self.prompt_cache: DynamicCache | None = None   # encoder cache of the last prompt (batch 1)
        self.cached_prompt: list[int] = []
        self.prefix_stats = fresh_prefix_stats()
        self.pace_ms: dict[tuple[int, int], float] = {}  # (rows, canvas) -> measured ms per denoising step
        self.shapes_seen: set[tuple[int, int]] = set()
        self.fast_path = self._pick_fast_path()
        self.static: StaticPrompt | None = None
        self.graphed = False   # the compiled step replays CUDA graphs
        self.notes: list[str] = []   # what the user asked for and did not get, said once the model is ready
        cores = usable_cores()
        if self.config.threads and self.config.threads > cores:
            # More threads than cores wait for one another: a fill here took 9.7 s with 32 and ran for minutes
            # with 1,024 (the loader set the cores' count).
            self.notes.append(f"threads {self.config.threads} is more than this process may use "
                              f"({cores} core{'s' if cores > 1 else ''}): using {cores}")
        notes_before_fitting, self.window_note = len(self.notes), None
        self.prompt_budget = self.fitting_prompt_budget(self.config.max_prompt_tokens or self.loaded.max_prompt_tokens)
        if self.prompt_budget < MIN_PROMPT_TOKENS:
            raise EngineError(f"a context of {self.prompt_budget} tokens is too small (at least {MIN_PROMPT_TOKENS})")
        self.window = sliding_window_of(self.model.config.text_config)
        self.plain_budget = self.prompt_budget   # what the plain path takes, should the compiled one fail to build
        if self.fast_path != "off":
            # Static shapes make every decoder step read every slot of the cache, however short the prompt: the
            # context stays within the sliding window here (1,024 tokens for the 26B-A4B), where it cost least.
            self.prompt_budget = min(self.prompt_budget, self.window or self.prompt_budget)
            if self.prompt_budget < self.plain_budget and self.config.max_prompt_tokens:
                # The user asked for more context than this path reads: say what it uses (a "using N" note from
                # fitting the model's positions would name a context this path does not read).
                del self.notes[notes_before_fitting:]
                self.window_note = (f"a context of {self.config.max_prompt_tokens} tokens (contextTokens) is more "
                                    f"than the {self.fast_path} fast path reads: using {self.prompt_budget}, the "
                                    f"model's sliding window (fastPath off reads up to {self.plain_budget})")
                self.notes.append(self.window_note)
            # The weights fitted, but the static cache and the warm-up's shapes come on top of them.
            reporting_out_of_memory(lambda: self._prepare_fast_path(cancel), ModelLoadError,
                                    f"preparing the {self.fast_path} fast path (its cache and warm-up)",
                                    "set fastPath off or a smaller contextTokens, or try "
                                    + memory_advice(self.loaded.quantize, self.device, loading=False))

    def _prepare_fast_path(self, cancel: Callable[[], bool] | None) -> None:
        self.static = StaticPrompt(self.model, self.prompt_budget)
        self.scored_step = self.first_step = static_scored_step(self.model, self._settings())
        if self.fast_path == "compiled":
            self.graphed = cuda_graphs_fit(self.model, self.device) and self.config.compile_backend == "inductor"
            self.scored_step = compile_step(self.first_step, self.config.compile_backend, graphs=self.graphed)
            from torch._dynamo.exc import BackendCompilerFailed   # only here: the CPU's plain path never needs it

            try:
                self.warm_up(cancel=cancel)
            except BackendCompilerFailed as wrapper:   # inductor's InductorError is one too
                # Only the compiler's own failures: an error while the compiled step runs (a device assert, say)
                # leaves nothing to fall back on, and fails the load as before.
                failure = compiler_error(wrapper)
                if out_of_memory(failure) is not None:
                    raise failure from None   # reported with memory advice (reporting_out_of_memory)
                self._fall_back_to_the_plain_path(failure)

    def _fall_back_to_the_plain_path(self, failure: BaseException) -> None:
        """The compiler can fail on a shape it was never tried on: torch 2.11's Triton code generation failed on
        the 26B-A4B's 262,144-token vocabulary (bench/RESULTS.md, 2026-11-25). Serve without it rather than not at
        all. The plain path, not the static one uncompiled: at that shape the plain path's steps were the faster."""
        from torch._dynamo import reset as forget_compiled

        # Drops what was compiled and captured so far, in the whole process: the server holds one engine at a time,
        # and an engine compiled later compiles afresh.
        forget_compiled()
        self.fast_path, self.static, self.graphed = "off", None, False
        self.pace_ms.clear(), self.shapes_seen.clear()   # timed on the failed path, if at all
        self.prompt_budget = self.plain_budget
        if self.window_note in self.notes:   # the plain path reads past the window
            self.notes.remove(self.window_note)
        first_line = (str(failure).strip().splitlines() or [""])[0][:200]
        self.notes.append(f"the compiled decoder step failed to build ({type(failure).__name__}: {first_line}); "
                          "serving with the plain path (fastPath off), which is slower on a GPU")

    def fitting_prompt_budget(self, asked: int) -> int:
        """The context tokens asked for, within the model's positions: the canvas follows the prompt, so both must
        fit in max_position_embeddings. Past it positions have no rotary meaning the model learnt, and a huge
        budget (262,144 asked of a model of 8,192) would time a prompt of half of it while loading."""
        positions = getattr(self.model.config.text_config, "max_position_embeddings", None)
        if not isinstance(positions, int) or asked + self.loaded.canvas_length <= positions:
            return asked
        fits = positions - self.loaded.canvas_length
        if fits < MIN_PROMPT_TOKENS:
            raise EngineError(f"this model's {positions} positions leave no room for a context beside its "
                              f"{self.loaded.canvas_length}-token canvas")
        where = "contextTokens" if self.config.max_prompt_tokens else "the checkpoint's max_prompt_tokens"
        self.notes.append(f"a context of {asked} tokens ({where}) does not fit this model's {positions} "
                          f"positions beside its {self.loaded.canvas_length}-token canvas: using {fits}")
        return fits

    def _check_special_ids(self) -> None:
        """Every special token this engine writes into a prompt or a canvas must have a row in the embedding table:
        one past it fails every fill (on CUDA, a device assert that breaks the context). loading.py's probe checks
        only the ids of plain code."""
        used = {"end-of-text": self.eos_id, "padding": self.pad_id}
        if self.fim_ids:
            used.update(zip(FIM_TOKENS, self.fim_ids))
        elif self.bos_id is not None:   # only the suffix-pinned layout starts its prompt with <bos>
            used["beginning-of-text"] = self.bos_id
        if self.mask_id is not None:
            used["<mask>"] = self.mask_id
        for name, token_id in used.items():
            if token_id >= self.vocab_size:
                raise ModelLoadError(
                    f"{self.loaded.source}: the tokenizer's {name} token is id {token_id}, beyond the model's "
                    f"vocabulary of {self.vocab_size} tokens (the tokenizer has {len(self.tokenizer)}); the "
                    "tokenizer and the model do not belong together")

    def _check_in_vocabulary(self, ids: list[int]) -> None:
        """Text can still tokenize past the embedding table (a tokenizer a little larger than the model's
        vocabulary): refused here with words, not as an IndexError inside the embedding (a device assert on CUDA)."""
        beyond = max(ids, default=-1)
        if beyond >= self.vocab_size:
            raise EngineError(f"the tokenizer wrote token {beyond}, beyond the model's vocabulary of "
                              f"{self.vocab_size} tokens; the tokenizer and the model do not belong together")

    def retune(self, *, max_steps: int | None, seed: int, reuse_prefix: bool) -> None:
        """Options that change neither the weights nor the compiled step, taken between runs without a reload.
        `max_steps` None: the device's default, as at load."""
        if max_steps is not None and max_steps < 1:
            raise EngineError(f"max_steps must be at least 1, not {max_steps}")
        with self.lock:   # every run reads these from self.config, and reuse_prefix is checked at each encode
            self.config = dataclasses.replace(self.config, seed=seed, reuse_prefix=reuse_prefix,
                                              max_steps=max_steps or default_steps(self.device))

    def _pick_fast_path(self) -> str:
        """auto: the compiled static-shape step with CUDA graphs on CUDA, where it pays for itself (where graphs
        cannot hold the step, fp16 or float32 weights or a GPU older than compute capability 8.0: the static path
        uncompiled); the plain eager path on a CPU, where compiling cost minutes at start-up for 10-25% off a step
        (bench/RESULTS.md)."""
        choice = self.config.fast_path
        if choice not in ("auto", "compiled", "static", "off"):
            raise EngineError(f"unknown fast_path '{choice}' (use auto, compiled, static or off)")
        if choice == "auto":
            if self.device.type != "cuda":
                return "off"
            return "compiled" if cuda_graphs_fit(self.model, self.device) else "static"
        return choice

    def _canvas_for(self, length: int) -> int:
        return bucket(length, self.loaded.canvas_length, self.loaded.canvas_lengths)

    def canvas_lengths(self) -> list[int]:
        """Every length the canvas can be trimmed to: the checkpoint's trained lengths, or every bucket up to its
        canvas when it names none."""
        limit = self.loaded.canvas_length
        return sorted({self._canvas_for(size) for size in self.loaded.canvas_lengths or CANVAS_BUCKETS} | {limit})

    def warm_shapes(self) -> tuple[tuple[int, int], ...]:
        """(rows, canvas) of the common plans (WARM_PLANS) in this engine's layout. With the suffix pinned on the
        canvas, a plan runs a bucket larger, except at a file's end (no suffix to pin): both are warmed."""
        pinned_sizes = (0,) if self.fim_ids else (PINNED_SUFFIX_TOKENS, 0)
        shapes = []
        for pinned in pinned_sizes:
            for rows, longest in WARM_PLANS:
                canvas_len = self._canvas_for(longest + pinned)
                shapes += [(rows, canvas_len), (1, canvas_len)]
        return tuple(dict.fromkeys(shapes))

    def warm_up(self, shapes: tuple[tuple[int, int], ...] | None = None,
                cancel: Callable[[], bool] | None = None) -> float:
        """Compile (and capture) the decoder step for the common (rows, canvas) shapes before the first request.
        Returns the seconds it took."""
        shapes = shapes or self.warm_shapes()
        started = time.perf_counter()
        # Three steps: the first runs eagerly (no self-conditioning yet); of the compiled ones, CUDA graph trees
        # only warm up on the first call and record the graph on the second, so the next request replays it.
        self._run_at_shapes(shapes, steps=3, prompt_len=4, runs=1, cancel=cancel)
        return time.perf_counter() - started

    def measure_pace(self, shapes: tuple[tuple[int, int], ...] | None = None, steps: int = 3,
                     cancel: Callable[[], bool] | None = None) -> dict:
        """Time a few denoising steps at the common (rows, canvas) shapes, so a fill with a latency budget can plan
        its step count from the first request on. Returns the measured ms per step."""
        shapes = shapes or self.warm_shapes()
        # A typical prompt length (a step reads its keys); the first run at a shape is not counted (_record_pace).
        # At most PACE_PROMPT_TOKENS: a long context's timing would hold up the load for a figure only the planner
        # reads (it rescales by measured runs anyway).
        prompt_len = max(8, min(self.prompt_budget // 2, PACE_PROMPT_TOKENS))
        self._run_at_shapes(shapes, steps=steps, prompt_len=prompt_len, runs=2, cancel=cancel)
        return self._pace_report()

    def _run_at_shapes(self, shapes: tuple[tuple[int, int], ...], steps: int, prompt_len: int, runs: int,
                       cancel: Callable[[], bool] | None = None) -> None:
        """Denoise an all-<eos> canvas `runs` times at each (rows, canvas) shape, then forget that prompt and its
        prefix-reuse counts: warm-up and timing runs are not the user's."""
        settings = self._settings(steps=steps, stop_entropy=0.0, sync_every=steps)
        prompt = [self.eos_id] * prompt_len
        users_counts = dict(self.prefix_stats)
        with self.lock:
            try:
                for rows, canvas_len in sorted({(r, min(c, self.loaded.canvas_length)) for r, c in shapes}):
                    canvas = torch.full((rows, canvas_len), self.eos_id, device=self.device)
                    pinned = torch.zeros_like(canvas, dtype=torch.bool)
                    for _ in range(runs):
                        self._run(prompt, canvas, pinned, settings, self._generator(0), cancel)
            finally:   # also when cancelled: the next request must not find this prompt or these counts
                if self.static is not None:
                    self.static.prompt = []
                self.prompt_cache, self.cached_prompt = None, []
                self.prefix_stats = users_counts

    def _pace_report(self) -> dict:
        return {f"{rows}x{canvas_len}": round(ms, 2) for (rows, canvas_len), ms in sorted(self.pace_ms.items())}

    def describe(self) -> dict:
        return {
            "model": self.loaded.source,
            "device": str(self.device),
            "dtype": str(self.loaded.dtype).replace("torch.", ""),
            # Quantized weights are buffers, not parameters: counted from the loader's tally.
            "parameters": sum(p.numel() for p in self.model.parameters()) + self.loaded.quantized_weights,
            "quantize": self.loaded.quantize,
            "weight_bytes": weight_bytes(self.model),
            "layout": self.layout,
            "canvas_length": self.loaded.canvas_length,
            "canvas_lengths": self.canvas_lengths(),
            "max_prompt_tokens": self.prompt_budget,
            "notes": list(self.notes),
            "fast_path": self.fast_path,
            "prefix_reuse": dict(self.prefix_stats),
            "ms_per_step": self._pace_report(),
        }

    # ---- public API -------------------------------------------------------------------------------------------

    @property
    def max_prompt_tokens(self) -> int:
        """Context tokens the model reads (prefix + suffix + sentinels); infill/ budgets its context with this."""
        return self.prompt_budget

    @property
    def suffix_tokens_read(self) -> int | None:
        """The suffix tokens the prompt holds when not all the budget gives: none in the suffix-pinned layout (its
        head is on the canvas, not in the prompt)."""
        return None if self.fim_ids else 0

    @property
    def prompt_overhead(self) -> int:
        """Prompt tokens the layout adds around the context: three FIM sentinels, or a <bos>."""
        return 3 if self.fim_ids else int(self.bos_id is not None)

    def count_tokens(self, text: str) -> int:
        return len(self._encode_text(text))

    def fill(self, prefix: str, suffix: str, *, max_new_tokens: int = 64, lengths: list[int] | None = None,
             cancel: Callable[[], bool] | None = None, seed: int | None = None,
             budget_ms: float | None = None) -> Candidates:
        """Generate the middle between prefix and suffix. Each entry of `lengths` is one batch row whose canvas
        allows at most that many tokens; the model ends each row with <eos> where it sees fit.

        `budget_ms`: finish within about this long (an automatic suggestion while the user types). The steps are
        planned from the measured pace so the temperature schedule still runs its course; length candidates give
        way to one row when they would leave too few steps; a run that falls behind stops at the deadline with
        its current best canvas (every position always holds a guess). One canvas only: no block continuation."""
        limit = self.loaded.canvas_length - 1
        wanted = sorted({max(1, min(n, max_new_tokens, limit)) for n in (lengths or [max_new_tokens])})
        deadline = time.perf_counter() + budget_ms / 1e3 if budget_ms else None
        first = self._guarded(self._fill, prefix, suffix, wanted, cancel, seed, deadline)
        if deadline is not None:
            return first
        return self._continue(first, prefix, suffix, max(lengths or [max_new_tokens]), max_new_tokens, cancel, seed)

    def _continue(self, first: Candidates, prefix: str, suffix: str, asked: int, max_new_tokens: int, cancel,
                  seed) -> Candidates:
        """Longer than one canvas: while the best row filled its whole canvas without ending, append what it wrote
        to the prefix (the encoder cache of the rest is reused) and denoise the next canvas, block by block."""
        best, limit = first.best, self.loaded.canvas_length - 1
        budget = min(asked, max_new_tokens)
        # A row that did not end used all the room it had: the canvas less its <eos> slot and, suffix-pinned, less
        # the pinned suffix head after it (so a row holds up to 8 tokens fewer there). A request for the whole
        # canvas counts that slot too: it is not worth a second canvas for one token.
        room = limit - self._pinned_suffix_length(suffix)
        if best is None or best.ended or budget <= room + 1:
            return first
        # Go on from the longest row that ran out of room, not a shorter one the model liked more: the next blocks
        # would denoise again what the longer row has written already.
        best = max((item for item in first.items if not item.ended), key=lambda item: (item.length, item.confidence))
        # The other rows cut at their limits are unfinished beginnings of what the continuation writes in full: kept,
        # they would be picked over it (a block's confidence is its first canvas's, and shorter rows score higher).
        others = [item for item in first.items if item.ended]
        text, length, steps, blocks, timings = best.text, best.length, best.steps, 1, dict(first.timings)
        ended = False
        while length < budget and not ended:
            row = min(limit, budget - length)
            more = self._guarded(self._fill, self._whole_lines_within(prefix + text, suffix), suffix, [row], cancel,
                                 seed)
            block = more.best
            text, length, steps, blocks = text + block.text, length + block.length, steps + block.steps, blocks + 1
            ended = block.ended  # the model closed the middle inside this block: done
            for key in ("encode_ms", "denoise_ms", "total_ms"):
                timings[key] = timings.get(key, 0.0) + more.timings.get(key, 0.0)
            if block.length == 0:
                break   # a block that adds nothing would add nothing again
        joined = Candidate(text=text, confidence=best.confidence, length=length, canvas_length=best.canvas_length,
                           steps=steps, ended=ended)
        reason = (first.reason + f"; the {best.length}-token row, cut at its limit, continued block by block over "
                  f"{blocks} canvases to {length} tokens")
        return Candidates(items=[joined, *others], layout=first.layout, reason=reason, timings=timings)

    def _whole_lines_within(self, prefix: str, suffix: str) -> str:
        """`prefix` less the leading lines the prompt has no room for. The plan filled the prompt; each block adds
        the text written so far, and a cut by tokens would start the model's context mid-line (a snippet's `#`
        gone, its text read as code). The last line, where the writing goes on, is kept whole or cut by tokens."""
        room = self.prompt_budget - self.prompt_overhead
        if self.fim_ids:
            room = prefix_room(len(self._encode_text(suffix)), room)   # as trim_context shares it
        excess = len(self._encode_text(prefix)) - room
        while excess > 0:
            last_break = prefix.rfind("\n")
            start = 0
            while excess > 0 and start <= last_break:   # (a line's own token count: close to its share)
                end = prefix.index("\n", start) + 1
                excess -= len(self._encode_text(prefix[start:end]))
                start = end
            if start == 0:
                break
            prefix = prefix[start:]
            excess = len(self._encode_text(prefix)) - room
        return prefix

    def _pinned_suffix_length(self, suffix: str) -> int:
        """How many suffix tokens _prompt pins on the canvas after the middle (none with FIM sentinels)."""
        return 0 if self.fim_ids else len(self._encode_text(suffix)[:PINNED_SUFFIX_TOKENS])

    def prime(self, prefix: str, suffix: str) -> dict:
        """Encode the prompt a fill between `prefix` and `suffix` would read, and keep its cache: the next fill
        near there encodes only what changed meanwhile. For idle moments (the user started typing somewhere new
        and has not paused yet); generates nothing and leaves the reuse counters alone."""
        if not self.config.reuse_prefix:
            return {"prompt_tokens": 0, "reused_tokens": 0, "encode_ms": 0.0}
        started = time.perf_counter()
        prompt = self._prompt(prefix, suffix)[0]
        shared = self._guarded(self._keep_prompt, prompt)
        return {"prompt_tokens": len(prompt), "reused_tokens": shared,
                "encode_ms": (time.perf_counter() - started) * 1e3}

    def rewrite(self, prefix: str, suffix: str, original: str, *, strength: float = 0.5,
                instruction: str | None = None, cancel: Callable[[], bool] | None = None,
                seed: int | None = None) -> Candidates:
        """Start the canvas from `original`, renoise `strength` of it, and denoise again."""
        if not math.isfinite(strength):   # NaN would pass the clamp below and fail inside the sampler
            raise EngineError(f"a rewrite's strength must be a number from 0 to 1, not {strength}")
        strength = min(max(strength, 0.05), 1.0)
        return self._guarded(self._rewrite, prefix, suffix, original, strength, instruction, cancel, seed)

    # ---- internals --------------------------------------------------------------------------------------------

    def _guarded(self, fn, *args) -> Candidates:
        with self.lock:
            return reporting_out_of_memory(lambda: self._compiled_or_plain(fn, *args), EngineError,
                                           "while generating",
                                           "try a smaller contextTokens, a shorter completion or a smaller model")

    def _compiled_or_plain(self, fn, *args):
        """fn(*args); on the compiled path a shape the warm-up did not cover compiles now, and a compiler failure
        then is handled as at load: out of memory is said as such, anything else leaves the plain path serving
        this request and the next ones (before, each request at that shape failed the same way)."""
        if self.fast_path != "compiled":
            return fn(*args)
        from torch._dynamo.exc import BackendCompilerFailed

        try:
            return fn(*args)
        except BackendCompilerFailed as wrapper:
            failure = compiler_error(wrapper)
            if out_of_memory(failure) is not None:
                raise failure from None   # reported with memory advice (reporting_out_of_memory)
            self._fall_back_to_the_plain_path(failure)
            log.warning("%s", self.notes[-1])
        return fn(*args)

    def _steps_until(self, deadline: float, rows: int, canvas_len: int, steps: int) -> int | None:
        """Denoising steps that fit before `deadline` at this shape's measured pace (None: shape not measured)."""
        pace = self.pace_ms.get((rows, canvas_len))
        if pace is None:
            return None
        left_ms = (deadline - time.perf_counter()) * 1e3
        # 10% slack: the step that crosses the deadline still runs, and decoding the result comes after it. Never
        # more than `steps` (the user's setting), never fewer than MIN_BUDGET_STEPS unless that setting is lower.
        return min(steps, max(MIN_BUDGET_STEPS, int(0.9 * left_ms / max(pace, 1e-3))))

    def _record_pace(self, rows: int, canvas_len: int, denoise_ms: float, steps: int) -> None:
        """The first run at a shape pays one-time costs (allocations, a compile) and is not counted."""
        shape = (rows, canvas_len)
        if steps <= 0 or shape not in self.shapes_seen:
            self.shapes_seen.add(shape)
            return
        measured = denoise_ms / steps
        old = self.pace_ms.get(shape)
        self.pace_ms[shape] = measured if old is None else (1 - PACE_WEIGHT) * old + PACE_WEIGHT * measured

    def _settings(self, **overrides) -> SamplerSettings:
        c = self.config
        settings = SamplerSettings(steps=c.max_steps, entropy_bound=c.entropy_bound, t_max=c.t_max, t_min=c.t_min,
                                   stop_entropy=c.stop_entropy, stability_steps=c.stability_steps,
                                   self_conditioning=c.self_conditioning, acceptance=c.acceptance,
                                   confidence_threshold=c.confidence_threshold, mask_id=self.mask_id,
                                   sync_every=1 if self.device.type == "cpu" else 4)
        for key, value in overrides.items():
            setattr(settings, key, value)
        return settings

    def _generator(self, seed: int | None) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(self.config.seed if seed is None else seed)

    def _row_generators(self, seed: int | None, keys: list[int]) -> list[torch.Generator]:
        """One generator per canvas row, seeded from (seed, the row's key), so a row's randomness does not depend
        on the rows beside it."""
        return row_generators(self.config.seed if seed is None else seed, keys, self.device)

    def _encode_text(self, text: str) -> list[int]:
        try:
            return encode_text(self.tokenizer, text)
        except (TypeError, ValueError) as exc:   # a lone surrogate ("\ud83d"), which the tokenizer cannot take
            raise EngineError(f"the text cannot be tokenized: {exc}") from exc

    def _prompt(self, prefix: str, suffix: str) -> tuple[list[int], list[int]]:
        """(prompt ids, suffix ids to pin on the canvas). Context is trimmed to what the model was trained on:
        the prefix loses its oldest tokens, the suffix its farthest."""
        prefix_ids, suffix_ids = self._encode_text(prefix), self._encode_text(suffix)
        if self.fim_ids:
            prefix_ids, suffix_ids = trim_context(prefix_ids, suffix_ids, self.prompt_budget - self.prompt_overhead)
            fp, fs, fm = self.fim_ids
            if self.loaded.fim_order == "psm":
                prompt = [fp, *prefix_ids, fs, *suffix_ids, fm]
            else:
                prompt = [fs, *suffix_ids, fp, *prefix_ids, fm]
            self._check_in_vocabulary(prompt)
            return prompt, []
        # Suffix-pinned: the suffix head goes on the canvas, not in the prompt, so the prefix gets the whole
        # budget but for the <bos>.
        bos = [self.bos_id] if self.bos_id is not None else []
        room = self.prompt_budget - self.prompt_overhead
        prompt, pinned_suffix = bos + prefix_ids[max(0, len(prefix_ids) - room):], suffix_ids[:PINNED_SUFFIX_TOKENS]
        if not prompt:   # no <bos> and nothing before the cursor: the encoder needs a token, the end of a text
            prompt = [self.eos_id]
        self._check_in_vocabulary(prompt + pinned_suffix)
        return prompt, pinned_suffix

    @torch.no_grad()
    def _keep_prompt(self, prompt: list[int]) -> int:
        """Make the kept encoder KV cache hold `prompt`; returns how many leading tokens it already held. Keystroke
        after keystroke the prompt barely changes, so the cache of the longest shared token prefix with the previous
        prompt is kept and only the rest is encoded (the suffix comes first in the prompt, so typing changes only
        its tail). Every layer keeps every token (engine/masks.py), so the cache can be cut back anywhere, however
        long the prompt."""
        if self.static is not None:
            return self.static.encode(prompt, reuse=self.config.reuse_prefix)
        shared = self._reusable_prefix(prompt)
        if shared:
            cache = copy.deepcopy(self.prompt_cache)
            cache.crop(shared - len(self.cached_prompt))                      # drop what changed
        else:
            cache = full_dynamic_cache()
        new_ids = torch.tensor([prompt[shared:]], dtype=torch.long, device=self.device)  # (1, P - shared)
        positions = torch.arange(shared, len(prompt), device=self.device).unsqueeze(0)
        masks = encoder_masks(shared, len(prompt), len(prompt), self.window, self.device)  # (1, 1, P - shared, P)
        encoder = self.model.model.encoder
        encoder(input_ids=new_ids, attention_mask=for_attention(masks, self.model), position_ids=positions,
                **with_cache(encoder, cache))
        self.prompt_cache, self.cached_prompt = cache, list(prompt)
        return shared

    def _count_reuse(self, prompt_tokens: int, shared: int) -> None:
        self.prefix_stats["prompt_tokens"] += prompt_tokens
        self.prefix_stats["reused_tokens"] += shared
        self.prefix_stats["last_reused"] = shared

    def _reusable_prefix(self, prompt: list[int]) -> int:
        """How many leading prompt tokens the kept cache already holds (0 = encode from scratch)."""
        if self.prompt_cache is None or not self.config.reuse_prefix:
            return 0
        shared = 0
        for old, new in zip(self.cached_prompt, prompt):
            if old != new:
                break
            shared += 1
        return min(shared, len(prompt) - 1)  # always encode at least one token

    def _decoder_step(self, cache: DynamicCache, prompt_len: int, canvas_len: int):
        positions = torch.arange(prompt_len, prompt_len + canvas_len, device=self.device).unsqueeze(0)

        def step(canvas: torch.Tensor, sc_logits: torch.Tensor | None) -> torch.Tensor:
            out = self.model(**with_cache(self.model, cache), decoder_input_ids=canvas,
                             decoder_position_ids=positions, self_conditioning_logits=sc_logits)
            return out.logits                                                   # (B, C, V)
        return step

    def _run(self, prompt: list[int], canvas: torch.Tensor, pinned: torch.Tensor, settings: SamplerSettings,
             generators: Generators, cancel, deadline: float | None = None, kept: torch.Tensor | None = None
             ) -> tuple:
        started = time.perf_counter()
        rows, canvas_len = canvas.shape
        self._count_reuse(len(prompt), self._keep_prompt(prompt))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)   # once, before the loop: encoder time is not denoising time
        encoded = time.perf_counter()
        if deadline is not None:
            fitted = self._steps_until(deadline, rows, canvas_len, settings.steps)
            if fitted is not None:
                settings = dataclasses.replace(settings, steps=fitted)
        if self.static is None:
            cache = decoder_cache(self.prompt_cache, self.model.config.text_config, rows)
            step = self._decoder_step(cache, len(prompt), canvas_len)
            result = denoise(step, canvas, pinned, settings, self.vocab_size, generators, cancel, deadline=deadline,
                             kept=kept)
        else:
            positions = torch.arange(len(prompt), len(prompt) + canvas_len, device=self.device).unsqueeze(0)
            mask = for_attention(decoder_masks(len(prompt), self.static.max_len, canvas_len, self.window,
                                               self.device), self.model)
            eager_first = self.first_step if self.fast_path == "compiled" else None
            step = bind(self.scored_step, self.static.for_rows(rows), positions, mask, eager_first, self.graphed)
            result = denoise(None, canvas, pinned, settings, self.vocab_size, generators, cancel, scored_step=step,
                             deadline=deadline, kept=kept)
        ran = int(result.steps.max())   # (the one host sync, after the loop)
        if not bool(torch.isfinite(result.position_entropy).all()):
            # NaN logits pick token 0, <pad>: every fill would look like an honest empty answer.
            dtype = str(self.loaded.dtype).removeprefix("torch.")
            raise EngineError(f"the model computed NaN or infinite numbers in {dtype}: " + (
                "its weights are damaged" if dtype == "float32" else
                "its weights are damaged, or this dtype overflows for it; try dtype float32"))
        done = time.perf_counter()
        self._record_pace(rows, canvas_len, (done - encoded) * 1e3, ran)
        timings = {"encode_ms": (encoded - started) * 1e3, "denoise_ms": (done - encoded) * 1e3,
                   "prompt_tokens": len(prompt), "canvas_length": canvas.shape[1], "batch": canvas.shape[0],
                   "reused_prompt_tokens": self.prefix_stats["last_reused"], "planned_steps": settings.steps}
        return result, timings

    def _candidate(self, tokens: list[int], position_entropy: list[float], free: int, canvas_len: int,
                   steps: int) -> Candidate:
        """Decode one row: the middle ends at the first special token (end, pad, a FIM sentinel) inside its free
        region. Confidence is exp(-entropy) averaged over the whole denoising run and over the middle and its end
        token only: the last step alone is near-certain by construction (the canvas it reads is the one it just
        settled on), while how fast a row settled tells rows apart; the padding after the end is easy to predict
        and would favour rows given a longer limit."""
        kept = free
        for i, token in enumerate(tokens[:free]):
            if token in self.end_ids:
                kept = i
                break
        ended = kept < free
        text = self.tokenizer.decode(tokens[:kept], skip_special_tokens=False)
        if not ended and text.endswith("\ufffd"):
            kept, text = self._whole_characters(tokens, kept, text)
        judged = position_entropy[:min(kept + 1, free)] or position_entropy[:1]
        return Candidate(text=text, confidence=math.exp(-sum(judged) / len(judged)), length=kept,
                         canvas_length=canvas_len, steps=steps, ended=ended)

    def _whole_characters(self, tokens: list[int], kept: int, text: str) -> tuple[int, str]:
        """A row cut at its limit can end inside a multi-byte character (byte-level tokens), so `text` (its
        decoded `kept` tokens) ends in U+FFFD: drop the tokens of that unfinished character, so the next block of a
        long fill starts on a character boundary and no U+FFFD reaches the editor. At most 4 tokens go (a UTF-8
        character has at most 4 bytes)."""
        for shorter in range(kept - 1, max(kept - 4, 0) - 1, -1):
            shorter_text = self.tokenizer.decode(tokens[:shorter], skip_special_tokens=False)
            if not shorter_text.endswith("\ufffd"):
                return shorter, shorter_text
        return kept, text   # a replacement character the model wrote itself, not a cut one

    @torch.no_grad()
    def _fill(self, prefix: str, suffix: str, lengths: list[int], cancel, seed,
              deadline: float | None = None) -> Candidates:
        t0 = time.perf_counter()
        prompt, pinned_suffix = self._prompt(prefix, suffix)
        # The smallest bucket that holds the longest limit; a limit that fills it exactly gives its last slot to
        # <eos> rather than doubling the canvas (a 32-token plan runs on 32 positions, not 64).
        canvas_len = self._canvas_for(max(lengths) + len(pinned_suffix))
        lengths = sorted({min(n, canvas_len - 1 - len(pinned_suffix)) for n in lengths})
        if deadline is not None and len(lengths) > 1:
            fitting = self._steps_until(deadline, len(lengths), canvas_len, ROWS_NEED_STEPS)
            if fitting is not None and fitting < ROWS_NEED_STEPS:
                lengths = lengths[-1:]  # steps matter more than length candidates: the longest row can end early
        # A generator per row, keyed by its limit: the same seed and limit give the same text alone or beside others
        # on the same canvas length (a longer limit beside it that needs a larger bucket changes its draws, and the
        # canvas the model reads).
        generators = self._row_generators(seed, lengths)
        rows = len(lengths)
        if self.mask_id is None:  # uniform state: start from random tokens
            canvas = token_rows(generators, rows, (canvas_len,), self.vocab_size, self.device)   # (rows, C)
        else:                     # masked: start from all <mask>
            canvas = torch.full((rows, canvas_len), self.mask_id, device=self.device)
        pinned = torch.zeros(rows, canvas_len, dtype=torch.bool, device=self.device)
        for row, limit in enumerate(lengths):
            # After the row's limit: the pinned suffix head (suffix-pinned layout) or <eos>, then padding.
            tail = pinned_suffix or [self.eos_id]
            tail = (tail + [self.pad_id] * canvas_len)[:canvas_len - limit]
            canvas[row, limit:] = torch.tensor(tail, device=self.device)
            pinned[row, limit:] = True
        result, timings = self._run(prompt, canvas, pinned, self._settings(), generators, cancel, deadline)
        tokens, entropy, steps = result.tokens.tolist(), result.position_entropy.tolist(), result.steps.tolist()
        items = [self._candidate(tokens[r], entropy[r], lengths[r], canvas_len, steps[r]) for r in range(rows)]
        # Prefer rows where the model itself placed the end before the row's limit; then the most confident.
        order = sorted(range(rows), key=lambda r: (items[r].ended, items[r].confidence), reverse=True)
        items = [items[r] for r in order]
        best = items[0]
        reason = (f"length {best.length} from limits {lengths}: "
                  f"{'ended with <eos>' if best.ended else 'ran to its limit'}, "
                  f"mean confidence {best.confidence:.2f}" + (f" (best of {rows})" if rows > 1 else ""))
        timings["total_ms"] = (time.perf_counter() - t0) * 1e3
        timings["steps"] = best.steps
        return Candidates(items=items, layout=self.layout, reason=reason, timings=timings)

    @torch.no_grad()
    def _rewrite(self, prefix: str, suffix: str, original: str, strength: float, instruction: str | None,
                 cancel, seed) -> Candidates:
        t0 = time.perf_counter()
        prompt, pinned_suffix = self._prompt(prefix, suffix)
        original_ids = self._encode_text(original)
        self._check_in_vocabulary(original_ids)   # they start the canvas
        room = self.loaded.canvas_length - 1 - len(pinned_suffix)
        if len(original_ids) > room:   # cutting it would delete the selection's tail from the document
            raise EngineError(f"the selection is too long to rewrite: {len(original_ids)} tokens, and this model "
                              f"rewrites at most {room} at a time; select less")
        slack = max(4, len(original_ids) // 4)  # room to grow a little
        free = min(len(original_ids) + slack, room)
        canvas_len = self._canvas_for(free + 1 + len(pinned_suffix))
        start = original_ids + [self.eos_id] + [self.pad_id] * canvas_len
        generators = self._row_generators(seed, [free])
        canvas = torch.tensor([start[:canvas_len]], device=self.device)         # (1, C)
        pinned = torch.zeros(1, canvas_len, dtype=torch.bool, device=self.device)
        # After the room to grow: the pinned suffix head, or <eos> then padding, as a fill's row ends. Unpinned,
        # renoising scattered random tokens there and the model was never told where the rewrite must end.
        tail = (pinned_suffix or [self.eos_id]) + [self.pad_id] * canvas_len
        canvas[0, free:] = torch.tensor(tail[:canvas_len - free], device=self.device)
        pinned[0, free:] = True
        original = canvas
        canvas = renoise(canvas, strength, pinned, self.vocab_size, generators, self.mask_id)
        kept = None
        if self.mask_id is None:
            # Uniform noise: the original's tokens that renoising left stay until the model accepts another there
            # (denoise). Not the room to grow: an <eos> kept after the original would cap the rewrite at its length.
            kept = canvas == original
            kept[0, len(original_ids):] = False
            # Only tokens of whole characters: a byte of `é` kept beside its other byte rewritten made text that is
            # not UTF-8, and the rewrite was refused. The model writes such characters whole or not at all.
            pieces = torch.tensor(["\ufffd" in self.tokenizer.decode([t], skip_special_tokens=False)
                                   for t in original_ids], dtype=torch.bool, device=self.device)
            kept[0, :len(original_ids)] &= ~pieces
        else:
            # Masked noise keeps what was not masked, final. The room to grow after the original (its <eos>, then
            # padding) is always masked, never kept: an <eos> kept right after the original capped the rewrite at
            # the original's length.
            canvas[0, len(original_ids):free] = self.mask_id
            pinned = pinned | (canvas != self.mask_id)
        # at least 4 steps to settle what was renoised, but never more than the user's cap
        steps = min(self.config.max_steps, max(4, round(self.config.max_steps * strength)))
        settings = self._settings(steps=steps, schedule_start=strength)
        result, timings = self._run(prompt, canvas, pinned, settings, generators, cancel, kept=kept)
        item = self._candidate(result.tokens[0].tolist(), result.position_entropy[0].tolist(), free, canvas_len,
                               int(result.steps[0]))
        reason = f"rewrite at strength {strength:.2f}, {item.steps} steps, mean confidence {item.confidence:.2f}"
        if instruction:
            reason += "; the instruction was not used: this model has no instruction tuning"
        timings["total_ms"] = (time.perf_counter() - t0) * 1e3
        timings["steps"] = item.steps
        return Candidates(items=[item], layout=self.layout, reason=reason, timings=timings)
