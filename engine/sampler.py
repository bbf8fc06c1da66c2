"""The denoising loop: uniform-state noise, entropy-bound acceptance, self-correction, self-conditioning, stopping.

Every position of the canvas always holds some token. Each step the decoder predicts all of them; the lowest-entropy
predictions whose summed entropy stays under a bound are kept, every other position is renoised with a uniformly
random token. A token kept at one step is judged again at the next, so it can still be revised (self-correction).
Pinned positions (end markers, known suffix, text the user kept) never change and cost nothing in the bound.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .types import Cancelled

# decoder_step(canvas (B, C), self_conditioning_logits (B, C, V) | None) -> logits (B, C, V)
DecoderStep = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass
class SamplerSettings:
    steps: int = 48
    entropy_bound: float = 0.1
    t_max: float = 0.8
    t_min: float = 0.4
    stop_entropy: float = 0.005
    stability_steps: int = 1
    self_conditioning: bool = True
    schedule_start: float = 1.0   # rewrites start part-way down the temperature schedule
    acceptance: str = "entropy-bound"   # or "confidence": keep tokens whose probability reaches the threshold
    confidence_threshold: float = 0.9
    mask_id: int | None = None    # set = masked-noise variant: rejected positions go back to <mask>, kept ones freeze
    sync_every: int = 1           # how often the host checks for early stop (GPU: every few steps)


@dataclass
class DenoiseResult:
    tokens: torch.Tensor          # (B, C) argmax canvas at each row's last step, pins applied
    confidence: torch.Tensor      # (B, C) probability of that token at the last step
    steps: torch.Tensor           # (B,) denoising passes each row ran
    position_entropy: torch.Tensor  # (B, C) each position's entropy, averaged over the row's steps


def temperature(step: int, settings: SamplerSettings) -> float:
    """Linear from t_max at the first step down towards t_min, started at `schedule_start` of the way. As in
    transformers' DiffusionGemma `generate`, whose step counter counts the steps left, the last step runs at
    t_min + (t_max - t_min) / steps, not at t_min itself."""
    remaining = settings.schedule_start * (settings.steps - step) / settings.steps
    return settings.t_min + (settings.t_max - settings.t_min) * remaining


def entropy_bound_accept(entropy: torch.Tensor, pinned: torch.Tensor, bound: float) -> torch.Tensor:
    """Keep the k lowest-entropy positions with sum(entropy) - max(entropy) <= bound (arXiv:2505.24857).

    entropy, pinned: (B, C). Returns the accept mask (B, C); pinned positions are always accepted."""
    free_entropy = entropy.masked_fill(pinned, 0.0)
    sorted_entropy, order = torch.sort(free_entropy, dim=-1)
    within_bound = torch.cumsum(sorted_entropy, dim=-1) - sorted_entropy <= bound
    accept = torch.zeros_like(within_bound).scatter(-1, order, within_bound)
    return accept | pinned


def confidence_accept(top_prob: torch.Tensor, pinned: torch.Tensor, threshold: float) -> torch.Tensor:
    """Keep positions whose most likely token reaches `threshold`, and always at least the single most confident
    free position so every step makes progress. top_prob, pinned: (B, C)."""
    free_prob = top_prob.masked_fill(pinned, -1.0)
    best = torch.zeros_like(pinned).scatter(-1, free_prob.argmax(-1, keepdim=True), True)
    return (free_prob >= threshold) | (best & ~pinned) | pinned


# One generator per canvas row, so that a row's random draws depend on its own seed only, not on how many rows
# run beside it; or one generator that every row draws from in turn (tests, benchmarks).
Generators = torch.Generator | Sequence[torch.Generator]
SEED_STRIDE = 1_000_003   # (seed, key) -> seed * SEED_STRIDE + key: distinct for every key below the stride


def row_generators(seed: int, keys: Sequence[int], device) -> list[torch.Generator]:
    """A generator per row, seeded from (seed, the row's key): a fill's rows are keyed by their length limit, so
    the same seed and limit draw the same numbers alone or batched with other limits."""
    return [torch.Generator(device=device).manual_seed((seed * SEED_STRIDE + key) % 2**64) for key in keys]


def each_row(generators: Generators, rows: int) -> list[torch.Generator]:
    """The generator each row draws from."""
    if isinstance(generators, torch.Generator):
        return [generators] * rows
    if len(generators) != rows:
        raise ValueError(f"{len(generators)} generators for {rows} rows")
    return list(generators)


def per_row(draw: Callable[[torch.Generator], torch.Tensor], generators: Generators, rows: int,
            dim: int = 0) -> torch.Tensor:
    """`draw(generator)` for each row, each from its own generator, stacked along `dim`."""
    return torch.stack([draw(g) for g in each_row(generators, rows)], dim)


def uniform_rows(generators: Generators, rows: int, shape: tuple[int, ...], device, dim: int = 0) -> torch.Tensor:
    """U(0, 1) draws of `shape` per row, each row from its own generator, stacked along `dim` (rows, *shape)."""
    return per_row(lambda g: torch.rand(shape, generator=g, device=device), generators, rows, dim)


def token_rows(generators: Generators, rows: int, shape: tuple[int, ...], vocab_size: int, device,
               dim: int = 0) -> torch.Tensor:
    """Uniformly random token ids of `shape` per row, each row from its own generator, stacked along `dim`."""
    return per_row(lambda g: torch.randint(0, vocab_size, shape, generator=g, device=device), generators, rows, dim)


def renoise(canvas: torch.Tensor, fraction: float, pinned: torch.Tensor, vocab_size: int,
            generators: Generators, mask_id: int | None = None) -> torch.Tensor:
    """Replace `fraction` of the free positions with uniform random tokens, or with <mask> for masked noise
    (a rewrite's starting point). canvas, pinned: (B, C)."""
    B, C = canvas.shape
    noise_mask = uniform_rows(generators, B, (C,), canvas.device) < fraction                      # (B, C)
    if mask_id is None:
        noise = token_rows(generators, B, (C,), vocab_size, canvas.device)                        # (B, C)
    else:
        noise = torch.full_like(canvas, mask_id)
    return torch.where(noise_mask & ~pinned, noise, canvas)


# scored_step(canvas, sc_logits | None, pinned, pin_values, inv_temperature, uniform, noise) -> Proposal
ScoredStep = Callable[..., "Proposal"]


@dataclass
class Proposal:
    """Everything one denoising pass decides, computed from the logits in one place (the compilable part)."""
    canvas: torch.Tensor          # (B, C) next canvas: accepted samples, fresh noise elsewhere, pins kept
    scaled: torch.Tensor          # (B, C, V) temperature-scaled logits (fed back as self-conditioning)
    entropy: torch.Tensor         # (B, C)
    top_prob: torch.Tensor        # (B, C) probability of the argmax token
    argmax: torch.Tensor          # (B, C) pins applied
    accept: torch.Tensor          # (B, C) positions kept this step (pins included)
    sampled: torch.Tensor         # (B, C) the token drawn at each position


def propose(logits: torch.Tensor, canvas: torch.Tensor, pinned: torch.Tensor, pin_values: torch.Tensor,
            inv_temperature: torch.Tensor, uniform: torch.Tensor, noise: torch.Tensor,
            settings: SamplerSettings) -> Proposal:
    """One step's decisions from the decoder's logits (B, C, V). Static shapes, no generator and no host sync, so
    the engine can compile it together with the decoder forward: the random draws (`uniform`: one U(0,1) per
    position for inverse-CDF sampling, `noise`: the renoising tokens) are made by the caller."""
    scaled = logits.float() * inv_temperature                                         # (B, C, V)
    if settings.mask_id is not None:
        # <mask> is the noise, never an answer: a position still undecided at the last step took it as its argmax
        # and ended the text there. (0 after the softmax, also in the self-conditioning fed back.)
        scaled[..., settings.mask_id] = float("-inf")
    log_probs = torch.log_softmax(scaled, dim=-1)                                     # (B, C, V)
    probs = log_probs.exp()
    # xlogy: a token the model rules out (logit -inf) adds 0, not 0 * -inf = NaN, and no (B, C, V) mask is made;
    # NaN logits stay NaN, for the engine's check.
    entropy = -torch.special.xlogy(probs, probs).sum(-1)                              # (B, C)
    top_prob, argmax = probs.max(-1)                                                  # (B, C)
    # Inverse-CDF sampling: one uniform per position instead of a vocabulary-sized draw.
    # right=True: the first token whose cdf passes the draw, where the cdf rises, so a token of probability 0 is
    # never drawn (right=False took token 0 for u == 0, which torch.rand can return, whatever its probability).
    cdf = probs.cumsum(-1)                                                            # (B, C, V)
    sampled = torch.searchsorted(cdf, (uniform * cdf[..., -1]).unsqueeze(-1), right=True).squeeze(-1)
    sampled = sampled.clamp(max=logits.shape[-1] - 1)                                 # (B, C)
    if settings.acceptance == "confidence":
        accept = confidence_accept(top_prob, pinned, settings.confidence_threshold)
    else:
        accept = entropy_bound_accept(entropy, pinned, settings.entropy_bound)
    next_canvas = torch.where(pinned, pin_values, torch.where(accept, sampled, noise))
    argmax = torch.where(pinned, pin_values, argmax)
    return Proposal(canvas=next_canvas, scaled=scaled, entropy=entropy, top_prob=top_prob, argmax=argmax,
                    accept=accept, sampled=sampled)


def scored_step_of(decoder_step: DecoderStep, settings: SamplerSettings) -> ScoredStep:
    """Decoder forward and the step's decisions as one function: the unit the engine compiles."""
    def scored_step(canvas, sc_logits, pinned, pin_values, inv_temperature, uniform, noise) -> Proposal:
        logits = decoder_step(canvas, sc_logits)                                      # (B, C, V)
        return propose(logits, canvas, pinned, pin_values, inv_temperature, uniform, noise, settings)
    return scored_step


# A run with a deadline plans at least this many steps and stops at the deadline only after them: one pass over a
# random canvas is noise, and a slow machine had better overshoot its budget than show that.
MIN_BUDGET_STEPS = 4


def temperature_schedule(settings: SamplerSettings, device) -> torch.Tensor:
    """(steps,) inverse temperatures, made once per run so each step only indexes a tensor."""
    return torch.tensor([1.0 / temperature(step, settings) for step in range(settings.steps)], device=device)


@torch.no_grad()
def denoise(decoder_step: DecoderStep | None, canvas: torch.Tensor, pinned: torch.Tensor, settings: SamplerSettings,
            vocab_size: int, generators: Generators, cancel: Callable[[], bool] | None = None,
            scored_step: ScoredStep | None = None, deadline: float | None = None,
            kept: torch.Tensor | None = None) -> DenoiseResult:
    """canvas, pinned: (B, C). The pinned positions of `canvas` hold their fixed values. `generators`: one per row
    (row_generators), or one shared. `scored_step` (the decoder forward plus `propose`, possibly compiled) replaces
    `decoder_step` when given. `deadline` (time.perf_counter() seconds): checked where the host syncs anyway, from
    the MIN_BUDGET_STEPS-th step on; past it the run stops with its current best canvas. `kept` (B, C): free
    positions that hold the user's own tokens (a rewrite's text that renoising left alone, uniform noise only). A step
    that accepts no sample there leaves the token where a fill's undecided position gets fresh noise: renoising every
    rejected position threw the user's code away at the first step, so a light rewrite was a fresh fill. Once a
    sample is accepted there the position is the model's, and revised as any other."""
    B, C = canvas.shape
    device = canvas.device
    step_fn = scored_step or scored_step_of(decoder_step, settings)
    inv_temperatures = temperature_schedule(settings, device)                         # (steps,)
    pin_values = canvas.clone()
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    steps_run = torch.zeros(B, dtype=torch.long, device=device)
    stable_for = torch.zeros(B, dtype=torch.long, device=device)
    best = torch.full((B, C), -1, dtype=torch.long, device=device)
    confidence = torch.zeros(B, C, device=device)
    free_count = (~pinned).sum(-1).clamp(min=1)
    entropy_total = torch.zeros(B, C, device=device)
    sc_logits = None
    # Every random number of the run, drawn up front row by row (a few hundred KB): a row's draws come from its own
    # generator, and the loop only indexes. uniforms: one U(0,1) per position for sampling; noise: the tokens
    # rejected positions get (uniform state), or <mask> (masked: kept positions are final, no self-correction).
    uniforms = uniform_rows(generators, B, (settings.steps, C), device, dim=1)                    # (S, B, C)
    if settings.mask_id is None:
        noises = token_rows(generators, B, (settings.steps, C), vocab_size, device, dim=1)          # (S, B, C)
    else:
        noises = torch.full_like(canvas, settings.mask_id).expand(settings.steps, B, C)             # (S, B, C)
    for step in range(settings.steps):
        if cancel is not None and cancel():
            raise Cancelled()
        out = step_fn(canvas, sc_logits if settings.self_conditioning else None, pinned, pin_values,
                      inv_temperatures[step], uniforms[step], noises[step])
        argmax = out.argmax
        if settings.mask_id is not None:
            pin_values = torch.where(out.accept & ~pinned, out.sampled, pin_values)
            pinned = pinned | out.accept
            argmax = torch.where(pinned, pin_values, argmax)

        next_canvas = out.canvas
        if kept is not None:
            next_canvas = torch.where(kept & ~out.accept, canvas, next_canvas)
            kept = kept & ~out.accept
            argmax = torch.where(kept, canvas, argmax)   # the answer too: changed only where a sample was accepted
        # Rows that already stopped keep their state; the others move on.
        active = ~finished
        canvas = torch.where(active[:, None], next_canvas, canvas)
        stable_for = torch.where((argmax == best).all(-1), stable_for + 1, torch.zeros_like(stable_for))
        best = torch.where(active[:, None], argmax, best)
        confidence = torch.where(active[:, None], out.top_prob, confidence)
        sc_logits = out.scaled if sc_logits is None else torch.where(active[:, None, None], out.scaled, sc_logits)
        steps_run += active.long()
        mean_entropy = out.entropy.masked_fill(pinned, 0.0).sum(-1) / free_count
        entropy_total += torch.where(active[:, None], out.entropy, torch.zeros_like(out.entropy))
        finished |= (mean_entropy < settings.stop_entropy) & (stable_for >= settings.stability_steps)
        if settings.mask_id is not None:
            finished |= pinned.all(-1)  # masked noise: done once every position is decided
        if (step + 1) % settings.sync_every == 0:
            late = (deadline is not None and step + 1 >= min(MIN_BUDGET_STEPS, settings.steps)
                    and time.perf_counter() >= deadline)
            if bool(finished.all()) or late:
                break
    return DenoiseResult(tokens=best, confidence=confidence, steps=steps_run,
                         position_entropy=entropy_total / steps_run.clamp(min=1)[:, None])
