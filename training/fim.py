"""Fill-in-the-middle examples cut out of a token stream, shared by the diffusion model and its AR twin.

One example is (prefix, middle, suffix) ids with a fixed total size, so batches need no padding in the context:
- line:         the middle is one whole line;
- lines:        2 to 12 whole lines;
- span:         starts and ends anywhere (mid-token-run, mid-line), 0 to canvas-1 tokens;
- continuation: no suffix, the middle is the next canvas-1 tokens (plain left-to-right; in the diffusion layout it
                fills the canvas, which the engine reads as "not ended, continue block by block").
Layouts: the diffusion model reads `<fim_suffix> suffix <fim_prefix> prefix <fim_middle>` and denoises
`middle <eos> <pad>...`; the AR twin reads PSM `<fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle <eos>`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from engine.configs import BOS_ID, EOS_ID, PAD_ID

KINDS = ("line", "lines", "span", "continuation")
DEFAULT_MIX = (0.3, 0.25, 0.3, 0.15)
# Of the line, lines and span examples, this share ends at a file's end with no suffix: where the user writes at
# the bottom of a file (an empty suffix otherwise came only with a continuation, which runs to the canvas end).
FILE_END_SHARE = 0.1


@dataclass
class Example:
    prefix: list[int]
    middle: list[int]
    suffix: list[int]
    kind: str


class FimSampler:
    """Cuts examples whose prefix + suffix fill `context` tokens (less the 3 sentinels) and whose middle fits the
    canvas with its <eos>."""

    def __init__(self, stream: np.ndarray, newline_ids: np.ndarray, context: int, canvas: int, seed: int,
                 max_suffix: int | None = None, mix: tuple[float, ...] = DEFAULT_MIX):
        self.stream, self.P, self.C = stream, context, canvas
        # As long as the engine keeps at inference (engine/prompt.py trim_context: a third of the prompt less its
        # sentinels); away from a file's end the suffix runs to that cap, so half the examples have it whole.
        self.max_suffix = max_suffix if max_suffix is not None else (context - 3) // 3
        self.mix = mix
        self.rng = random.Random(seed)
        # positions just after a token holding a newline: line starts
        self.line_starts = np.nonzero(np.isin(stream, newline_ids))[0] + 1
        self.file_starts = np.nonzero(stream == BOS_ID)[0]   # each file begins with <bos>: the one before ends there
        if len(stream) < context + 2 * canvas + 8 or len(self.line_starts) < 16:
            raise ValueError(f"a stream of {len(stream)} tokens is too short for context {context}, canvas {canvas}")

    def _line_run(self, lo: int, hi: int, max_lines: int, C: int) -> tuple[int, int]:
        """(start, end) of a run of up to max_lines whole lines starting in [lo, hi] (at least 2 where possible)
        that fits a canvas of C tokens with its <eos>."""
        k_lo = int(np.searchsorted(self.line_starts, lo))
        k_hi = int(np.searchsorted(self.line_starts, hi, side="right")) - 2  # leave a line start after it
        if k_hi < k_lo:
            start = self.rng.randint(lo, hi)
            return start, start + self.rng.randint(1, C - 1)
        k = self.rng.randint(k_lo, k_hi)
        start = int(self.line_starts[k])
        ends = [int(e) for e in self.line_starts[k + 1:k + 1 + max_lines] if 0 < e - start <= C - 1]
        if max_lines > 1:
            ends = ends[1:] or ends
        return start, self.rng.choice(ends) if ends else start + self.rng.randint(1, C - 1)

    def example(self, canvas: int | None = None) -> Example:
        """An example for a canvas of `canvas` tokens (at most the sampler's own, its default)."""
        rng, C, s = self.rng, min(canvas or self.C, self.C), self.stream
        kind = rng.choices(KINDS, weights=self.mix)[0]
        if kind != "continuation" and rng.random() < FILE_END_SHARE:
            example = self._file_end(kind, C)
            if example is not None:
                return example
        if kind == "continuation":
            suffix_len = 0
        else:
            suffix_len = self.max_suffix if rng.random() < 0.5 else rng.randint(1, self.max_suffix)
        prefix_len = self.P - 3 - suffix_len
        lo, hi = prefix_len, len(s) - C - suffix_len - 1
        if kind == "line":
            start, end = self._line_run(lo, hi, 1, C)
        elif kind == "lines":
            start, end = self._line_run(lo, hi, 12, C)
        elif kind == "span":
            start = rng.randint(lo, hi)
            end = start + rng.randint(0, C - 1)
        else:
            start = int(self.line_starts[min(int(np.searchsorted(self.line_starts, rng.randint(lo, hi))),
                                             len(self.line_starts) - 1)]) if rng.random() < 0.5 else rng.randint(lo, hi)
            end = start + C - 1
        start = min(max(start, prefix_len), hi)
        end = min(max(end, start), start + C - 1)
        return Example(prefix=s[start - prefix_len:start].tolist(), middle=s[start:end].tolist(),
                       suffix=s[end:end + suffix_len].tolist(), kind=kind)


    def _file_end(self, kind: str, C: int) -> Example | None:
        """A middle that ends where a file ends (just before the next file's <bos>), with no suffix: the last line,
        the last 2-12 lines or a span up to there, fitting a canvas of C tokens with its <eos>."""
        rng, s = self.rng, self.stream
        prefix_len = self.P - 3
        ends = self.file_starts[(self.file_starts > prefix_len + C) & (self.file_starts < len(s) - C)]
        if not len(ends):
            return None
        end = int(ends[rng.randrange(len(ends))])
        if kind == "span":
            start = end - rng.randint(1, C - 1)
        else:
            starts = self.line_starts[(self.line_starts < end) & (self.line_starts >= end - (C - 1))]
            wanted = 1 if kind == "line" else rng.randint(2, 12)
            start = int(starts[max(0, len(starts) - wanted)]) if len(starts) else end - rng.randint(1, C - 1)
        own_start = self.file_starts[self.file_starts < end]   # its last one is the <bos> of the file ending here
        if len(own_start):
            start = max(start, int(own_start[-1]) + 1)   # within that file (a short one)
        return Example(prefix=s[start - prefix_len:start].tolist(), middle=s[start:end].tolist(), suffix=[],
                       kind=kind)


def diffusion_layout(ex: Example, fim_ids: tuple[int, int, int], canvas: int) -> tuple[list[int], list[int]]:
    """(prompt of exactly `context` tokens, canvas of exactly `canvas` tokens)."""
    fp, fs, fm = fim_ids
    prompt = [fs, *ex.suffix, fp, *ex.prefix, fm]
    body = ex.middle + [EOS_ID]
    return prompt, body + [PAD_ID] * (canvas - len(body))


def psm_layout(ex: Example, fim_ids: tuple[int, int, int], total: int) -> tuple[list[int], list[float]]:
    """(ids of exactly `total` tokens, loss weight per next-token target): PSM order, pads weigh nothing."""
    fp, fs, fm = fim_ids
    ids = [fp, *ex.prefix, fs, *ex.suffix, fm, *ex.middle, EOS_ID]
    weight = [1.0] * (len(ids) - 1)  # targets are ids[1:]
    pad = total - len(ids)
    return ids + [PAD_ID] * pad, weight + [0.0] * pad


def diffusion_batch(sampler: FimSampler, fim_ids, size: int, canvas: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompts (B, P), clean canvases (B, C)); C is `canvas`, else the sampler's."""
    C = min(canvas or sampler.C, sampler.C)
    pairs = [diffusion_layout(sampler.example(C), fim_ids, C) for _ in range(size)]
    prompts, canvases = zip(*pairs)
    return torch.tensor(prompts, dtype=torch.long), torch.tensor(canvases, dtype=torch.long)


def psm_batch(sampler: FimSampler, fim_ids, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (B, P + C), target weights (B, P + C - 1)): the same examples the diffusion model sees, in PSM form."""
    pairs = [psm_layout(sampler.example(), fim_ids, sampler.P + sampler.C) for _ in range(size)]
    ids, weights = zip(*pairs)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(weights, dtype=torch.float32)


def newline_token_ids(tokenizer) -> np.ndarray:
    return np.array([i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i])], dtype=np.int64)


def fim_token_ids(tokenizer) -> tuple[int, int, int]:
    """(<fim_prefix>, <fim_suffix>, <fim_middle>)."""
    return tuple(tokenizer.convert_tokens_to_ids(t) for t in ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"))
