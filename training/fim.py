"""Fill-in-the-middle examples cut out of a token stream, shared by the diffusion model and its AR twin.

One example is (prefix, middle, suffix) ids with a fixed total size, or less where the prefix reaches its file's
start (the layouts pad those to the fixed size):
- line:         the middle is one whole line;
- lines:        2 to 12 whole lines;
- span:         starts and ends anywhere (mid-token-run, mid-line), 0 to canvas-1 tokens;
- continuation: no suffix, the middle is the next canvas-1 tokens (plain left-to-right; in the diffusion layout it
                fills the canvas, which the engine reads as "not ended, continue block by block"; the AR twin's
                <eos> after it weighs nothing).
Middles, suffixes and prefixes stay in one file, as an editor's text does: a middle that reaches the next file's <bos>
ends the file (a file-end example, no suffix; a continuation that does so becomes a span), a suffix stops there, and
a prefix stops at its own file's start (never its <bos>, nor the file before): near the top of a file the prompt is
then shorter than the context, as the engine's is, and the diffusion layout left-pads it with <pad>s that
training/train.py hides from the model (the AR twin's PSM layout pads at the end, where pads weigh nothing).
With a tokenizer, each cut then moves to a character position and prefix, middle and suffix are tokenized apart, as
the engine tokenizes the editor's text (heal_cuts). A cut between stream tokens never shows the model a prefix the
editor sends all the time: the byte-level BPE folds a newline and all but one indentation space into one token, so
a line cut at a token boundary leaves one space in the middle; after auto-indent the prefix ends in the full
indentation, a token sequence the model would never have seen. Mid-word cursors and a prefix ending in a space after
code are the same story.
Layouts: the diffusion model reads `<pad>... <fim_suffix> suffix <fim_prefix> prefix <fim_middle>` and denoises
`middle <eos> <pad>...`; the AR twin reads PSM `<fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle <eos>`.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import numpy as np
import torch

from engine.configs import BOS_ID, EOS_ID, PAD_ID

KINDS = ("line", "lines", "span", "continuation")
DEFAULT_MIX = (0.3, 0.25, 0.3, 0.15)
# Tokens each side of a cut decoded and tokenized again at a character position: enough for any pre-token's merges
# near the cut (the stream's other tokens are those the file was tokenized into, which the pieces' own match there).
HEAL_WINDOW = 6
# Character cuts: a line middle starts at column 0 (a selection of whole lines, a cursor on a blank line) in this
# share, else after the line's indentation (the cursor after auto-indent); it ends before the line break in this
# share (the rest of the cursor's line is empty), else after it (whole lines selected).
LINE_AT_COLUMN_0 = 0.3
LINE_ENDS_BEFORE_BREAK = 0.6
# A span keeps the stream's token boundary in this share, else moves up to SPAN_JITTER characters either way.
SPAN_KEEPS_BOUNDARY = 0.4
SPAN_JITTER = 16
BLANK_LINE_DRAWS = 8   # tries for a line example whose middle is not blank
# Of the line, lines and span examples, this share ends at a file's end with no suffix: where the user writes at
# the bottom of a file (an empty suffix otherwise came only with a continuation, which runs to the canvas end).
FILE_END_SHARE = 0.1


@dataclass
class Example:
    prefix: list[int]
    middle: list[int]
    suffix: list[int]
    kind: str
    at_characters: bool = False   # cut at character positions (heal_cuts), else between the stream's tokens


class FimSampler:
    """Cuts examples whose prefix + suffix fill `context` tokens (less the 3 sentinels), or fewer where the prefix
    reaches its file's start, and whose middle fits the canvas with its <eos>."""

    def __init__(self, stream: np.ndarray, newline_ids: np.ndarray, context: int, canvas: int, seed: int,
                 max_suffix: int | None = None, mix: tuple[float, ...] = DEFAULT_MIX, tokenizer=None):
        """`tokenizer`: the stream's; with it cuts go to character positions (the module's docstring says why),
        without it they stay between tokens (any token stream works, as in the tests)."""
        self.stream, self.P, self.C = stream, context, canvas
        self.tokenizer = tokenizer
        if tokenizer is not None:
            # the Rust tokenizer itself, set to read "<eos>" in text as text like engine.prompt.encode_text: the
            # transformers wrapper costs more than the tokenizing here, for each of the few pieces an example has
            self.backend = copy.deepcopy(tokenizer.backend_tokenizer)
            self.backend.encode_special_tokens = True
        # each token's own text, for finding clean splits without decoding (a piece of a UTF-8 character reads as
        # U+FFFD, which is neither space nor a line break: never a clean split)
        self.token_texts = [self._decode([i]) for i in range(len(tokenizer))] if tokenizer is not None else []
        self.special_ids = np.array(sorted(tokenizer.all_special_ids) if tokenizer is not None else [], np.int64)
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

    def _next_file_start(self, i: int) -> int:
        """The first file start (its <bos>) at or after stream position i, else the stream's end."""
        k = int(np.searchsorted(self.file_starts, i))
        return int(self.file_starts[k]) if k < len(self.file_starts) else len(self.stream)

    def _own_file_start(self, i: int) -> int:
        """The first token of the file holding stream position i (just after its <bos>), else 0: where a prefix
        ending before i must stop."""
        k = int(np.searchsorted(self.file_starts, i, side="right"))
        return int(self.file_starts[k - 1]) + 1 if k > 0 else 0

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
        C = min(canvas or self.C, self.C)
        kind = self.rng.choices(KINDS, weights=self.mix)[0]
        for _ in range(BLANK_LINE_DRAWS):
            example = self._example_of(kind, C)
            # Cut at characters, a blank line's middle is empty: drawn again, or a twentieth of the line examples
            # would teach "write nothing" where code goes (between definitions, the stream's "\n\n" then "\n").
            if not (example.at_characters and kind in ("line", "lines") and not self._decode(example.middle).strip()):
                return example
        return example

    def _example_of(self, kind: str, C: int) -> Example:
        rng, s = self.rng, self.stream
        if kind != "continuation" and rng.random() < FILE_END_SHARE:
            example = self._file_end(kind, C)
            if example is not None:
                return example
        if kind == "continuation":
            suffix_len = 0
        else:
            suffix_len = self.max_suffix if rng.random() < 0.5 else rng.randint(1, self.max_suffix)
        # lo leaves room for a whole prefix even where the suffix comes out shorter (a file's end near)
        lo, hi = self.P - 3, len(s) - C - suffix_len - 1
        style = "line" if kind in ("line", "lines") else "any"
        if kind == "line":
            start, end = self._line_run(lo, hi, 1, C)
        elif kind == "lines":
            start, end = self._line_run(lo, hi, 12, C)
        elif kind == "span":
            start = rng.randint(lo, hi)
            end = start + rng.randint(0, C - 1)
        else:
            if rng.random() < 0.5:
                start, style = int(self.line_starts[min(int(np.searchsorted(self.line_starts, rng.randint(lo, hi))),
                                                        len(self.line_starts) - 1)]), "line"
            else:
                start = rng.randint(lo, hi)
            end = None   # canvas-1 tokens from where start lands below (a full canvas whatever moves it)
        start = min(max(start, lo), hi)
        while start < hi and s[start] == BOS_ID:
            start += 1   # a line start at a file's <bos>: the file's first line starts after it
        end = start + C - 1 if end is None else min(max(end, start), start + C - 1)
        # an editor's text is one file: a middle reaching the next file's <bos> ends at the file's end with no
        # suffix (a continuation ending there is no longer one: its <eos> falls inside the canvas), and a suffix
        # stops at the <bos> (the prefix takes the room)
        next_file = self._next_file_start(start)
        at_file_end = next_file <= end
        if at_file_end:
            end, suffix_len = next_file, 0
            kind = "span" if kind == "continuation" else kind
        suffix_len = min(suffix_len, next_file - end)
        # the prefix takes the room the suffix leaves, back to its file's start at most (the suffix keeps its cap
        # however short the prefix, as engine/prompt.py trim_context does)
        prefix_from = max(start - (self.P - 3 - suffix_len), self._own_file_start(start))
        healed = (self.heal_cuts(start, end, suffix_len, kind, style, C, at_file_end=at_file_end)
                  if self.tokenizer is not None else None)
        return healed or Example(prefix=s[prefix_from:start].tolist(), middle=s[start:end].tolist(),
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
        if self.tokenizer is not None:
            style = "any" if kind == "span" else "line"
            healed = self.heal_cuts(start, end, 0, kind, style, C, at_file_end=True)
            if healed is not None:
                return healed
        prefix_from = max(start - prefix_len, self._own_file_start(start))
        return Example(prefix=s[prefix_from:start].tolist(), middle=s[start:end].tolist(), suffix=[], kind=kind)

    # -- cuts at character positions -------------------------------------------------------------------------

    def _decode(self, ids) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=False)

    def _encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids if text else []

    def _token_text(self, i: int) -> str:
        return self.token_texts[self.stream[i]]

    def _splits_cleanly(self, i: int) -> bool:
        """Whether the stream's tokens before i and from i are tokenized the same as text ending or starting there
        would be: a word starts at i after a space (" name") or after a line break that is a whitespace run of its
        own ("\n" then "name"; of "\n", "\n", "name" a text ending in "\n\n" would make one token)."""
        if i <= 1 or i >= len(self.stream) or self.stream[i] in self.special_ids:
            return False
        here = self._token_text(i)
        if len(here) > 1 and here[0] == " " and not here[1].isspace():
            return True
        return (bool(here) and not here[0].isspace() and self._token_text(i - 1).endswith("\n")
                and not self._token_text(i - 2)[-1:].isspace())

    def _clean_split(self, near: int, step: int) -> int | None:
        """The first clean split from `near` going `step` (-1 back, +1 on) within HEAL_WINDOW*3 tokens; a file's
        <bos> going on is one (the text ends there). None if there is none before a special token."""
        for i in range(near, near + step * 3 * HEAL_WINDOW, step):
            if i <= 0 or i >= len(self.stream):
                return None
            if self.stream[i if step > 0 else i - 1] in self.special_ids:
                return i if step > 0 else None
            if self._splits_cleanly(i):
                return i
        return None

    def _whole_characters(self, a: int, i: int) -> int:
        """Token position i, or the nearest before it (not before a) where the tokens from a decode to whole
        characters."""
        while i > a and self._decode(self.stream[a:i]).endswith("\ufffd"):
            i -= 1
        return i

    def _start_char(self, text: str, boundary: int, style: str, limit: int) -> int:
        """Where in `text` the middle starts, given the stream's cut at character `boundary`, at most `limit`."""
        if style == "line":
            line = text.rfind("\n", 0, boundary) + 1
            if line == 0:
                return min(boundary, limit)
            if self.rng.random() < LINE_AT_COLUMN_0:
                return min(line, limit)
            indent_end = line + len(text[line:]) - len(text[line:].lstrip(" \t"))
            return min(indent_end, limit)
        if self.rng.random() < SPAN_KEEPS_BOUNDARY:
            return not_inside_crlf(text, min(boundary, limit), -1, 0)
        # the prefix's new text keeps a character that is not whitespace: the whitespace before it ends the tokens
        # kept from the stream, and a cut there would split one run of spaces into two tokens
        floor = len(text) - len(text.lstrip()) + 1
        low = max(floor, boundary - SPAN_JITTER)
        if low > limit:
            return boundary
        return not_inside_crlf(text, self.rng.randint(low, max(low, min(limit, boundary + SPAN_JITTER))), -1, low)

    def _end_char(self, text: str, boundary: int, style: str, floor: int) -> int:
        """Where in `text` the middle ends, given the stream's cut at character `boundary`, at least `floor`."""
        if style == "line":
            if boundary == len(text) and not text.endswith("\n"):
                return max(boundary, floor)   # a file's last line, with no line break after it
            # the break of the middle's own last line: the stream's line start may follow a token holding blank
            # lines too ("\n\n   "), whose last break would leave them in the middle (and the suffix without them)
            own_end = len(text[:boundary].rstrip(" \t\r\n"))
            end_of_line = text.find("\n", max(own_end, floor), boundary)
            if end_of_line < 0:
                return max(boundary, floor)
            if self.rng.random() >= LINE_ENDS_BEFORE_BREAK:
                return max(end_of_line + 1, floor)
            # before the whole break: a CRLF line's middle does not end in "\r" (the editor's cursor is before it)
            return max(end_of_line - (text[end_of_line - 1:end_of_line] == "\r"), floor)
        if self.rng.random() < SPAN_KEEPS_BOUNDARY:
            return not_inside_crlf(text, max(boundary, floor), 1, len(text))
        low = min(len(text), max(floor, boundary - SPAN_JITTER))
        return not_inside_crlf(text, self.rng.randint(low, max(floor, min(len(text), boundary + SPAN_JITTER))), 1,
                               len(text))

    def heal_cuts(self, start: int, end: int, suffix_len: int, kind: str, style: str, C: int,
                  at_file_end: bool = False) -> Example | None:
        """The example between stream tokens start and end with its cuts moved to character positions near them
        and its pieces tokenized apart; None where that cannot be done cleanly (the caller keeps the token cuts).
        style "line": the middle starts at a line's start or after its indentation and ends at a line break (before
        or after it); "any": anywhere near the token cut. Only the text around the middle is decoded again, from
        and to clean splits (_splits_cleanly), so the tokens kept from the stream are those of the text's own
        tokenization. A continuation keeps its canvas full; at a file's end the suffix is what follows the middle
        in the file (a last line break, or nothing)."""
        s = self.stream
        continuation = kind == "continuation"
        a = self._clean_split(start - HEAL_WINDOW, -1)
        if at_file_end:
            b = end   # the text ends there
        else:
            b = self._clean_split(start + C + HEAL_WINDOW if continuation else end + HEAL_WINDOW, +1)
        if a is None or b is None or b > len(s) or np.isin(s[a:b], self.special_ids).any():
            return None   # near a file's start, or no clean split: keep the token cuts
        text = self._decode(s[a:b])
        # a token cut inside a character's bytes moves to where that character starts (non-ASCII text would keep
        # the token cuts half the time otherwise)
        start, end = self._whole_characters(a, start), self._whole_characters(a, end)
        before_start, before_end = self._decode(s[a:start]), self._decode(s[a:end])
        if "\ufffd" in text or not (text.startswith(before_end) and before_end.startswith(before_start)):
            return None   # a character split between tokens
        c1 = self._start_char(text, len(before_start), style, len(before_end))
        if continuation:
            middle, suffix = self._encode(text[c1:]), []
            if len(middle) < C - 1:
                return None
            middle = middle[:C - 1]
        else:
            c2 = self._end_char(text, len(before_end), style, c1)
            middle, tail = self._encode(text[c1:c2]), self._encode(text[c2:])
            if len(middle) > C - 1:
                return None
            # the stream's part of the suffix stops at the next file's <bos> (b may be that <bos>)
            after = s[b:min(b + suffix_len, self._next_file_start(b))].tolist()
            suffix = tail if at_file_end else (tail + after)[:suffix_len]
        prefix_len = self.P - 3 - len(suffix)
        head = self._encode(text[:c1])
        # the stream's part of the prefix stops at its file's start (a is after that file's <bos>: see above)
        raw_from = max(a - (prefix_len - len(head)), self._own_file_start(a))
        if len(head) > prefix_len:
            return None
        return Example(prefix=s[raw_from:a].tolist() + head, middle=middle, suffix=suffix, kind=kind,
                       at_characters=True)


def not_inside_crlf(text: str, at: int, step: int, bound: int) -> int:
    """`at`, moved one character by `step` where it falls between the "\r" and "\n" of a CRLF break (unless that
    would cross `bound`)."""
    if 0 < at < len(text) and text[at - 1] == "\r" and text[at] == "\n" and (at + step - bound) * step <= 0:
        return at + step
    return at


def diffusion_layout(ex: Example, fim_ids: tuple[int, int, int], canvas: int,
                     context: int | None = None) -> tuple[list[int], list[int]]:
    """(prompt, canvas of exactly `canvas` tokens). With `context`, the prompt is left-padded with <pad> to exactly
    that many tokens (a prefix that stops at its file's start leaves room): the pads come first so that the prompt's
    own tokens keep their order and end where the canvas begins; training/train.py hides them and starts the
    positions at the first real token (prompt_keep), which makes the padded prompt the engine's shorter one."""
    fp, fs, fm = fim_ids
    prompt = [fs, *ex.suffix, fp, *ex.prefix, fm]
    if context is not None:
        prompt = [PAD_ID] * (context - len(prompt)) + prompt
    body = ex.middle + [EOS_ID]
    return prompt, body + [PAD_ID] * (canvas - len(body))


def psm_layout(ex: Example, fim_ids: tuple[int, int, int], total: int) -> tuple[list[int], list[float]]:
    """(ids of exactly `total` tokens, loss weight per next-token target): PSM order, pads weigh nothing, nor does
    a continuation's <eos>: its middle stops at the canvas's size, mid-statement, not where the code ends (weighed,
    it taught the AR twin to stop after canvas-1 tokens). A shorter prompt (a prefix from its file's start) only
    moves the pads: they all come at the end, after the <eos>, where the causal model's real tokens never see them
    and the real tokens sit at positions from 0, as AREngine's prompt does."""
    fp, fs, fm = fim_ids
    ids = [fp, *ex.prefix, fs, *ex.suffix, fm, *ex.middle, EOS_ID]
    weight = [1.0] * (len(ids) - 1)  # targets are ids[1:]
    if ex.kind == "continuation":
        weight[-1] = 0.0
    pad = total - len(ids)
    return ids + [PAD_ID] * pad, weight + [0.0] * pad


def diffusion_batch(sampler: FimSampler, fim_ids, size: int, canvas: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompts (B, P), left-padded with <pad> where shorter, clean canvases (B, C)); C is `canvas`, else the
    sampler's."""
    C = min(canvas or sampler.C, sampler.C)
    pairs = [diffusion_layout(sampler.example(C), fim_ids, C, sampler.P) for _ in range(size)]
    prompts, canvases = zip(*pairs)
    return torch.tensor(prompts, dtype=torch.long), torch.tensor(canvases, dtype=torch.long)


def psm_batch(sampler: FimSampler, fim_ids, size: int, canvas: int | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (B, P + C), target weights (B, P + C - 1)): the examples diffusion_batch draws with the same sampler
    state and canvas, in PSM form; C is `canvas`, else the sampler's."""
    C = min(canvas or sampler.C, sampler.C)
    pairs = [psm_layout(sampler.example(C), fim_ids, sampler.P + C) for _ in range(size)]
    ids, weights = zip(*pairs)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(weights, dtype=torch.float32)


def newline_token_ids(tokenizer) -> np.ndarray:
    return np.array([i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i])], dtype=np.int64)


def fim_token_ids(tokenizer) -> tuple[int, int, int]:
    """(<fim_prefix>, <fim_suffix>, <fim_middle>)."""
    return tuple(tokenizer.convert_tokens_to_ids(t) for t in ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"))
