"""Minimal edits: turn "replace the selection with this text" into the few small changes that actually differ, so
an editor applies (and undoes, and shows) only what the model changed.

Lines are compared first; a changed run of lines that still resembles its replacement is compared again word by
word. Edits are (start, end, new_text) in str offsets of the document, sorted, never overlapping and never
touching each other, so they can go into one LSP TextDocumentEdit.
"""
from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher

Edit = tuple[int, int, str]

# Every character falls in one alternative (any whitespace but line ends, e.g. a no-break space, counts as a gap),
# so the words always join back into the text and their offsets stay exact.
WORD = re.compile(r"\w+|[^\S\r\n]+|\r\n|\n|\r|[^\w\s]")
SIMILAR_ENOUGH = 0.5   # below this share of equal words a changed run is replaced whole: fragments would confuse
# A word diff costs about the product of the two runs' word counts (two runs of ~4,800 words: 0.24 s on this
# project's CPU); past this a changed run is replaced whole rather than hold the worker for seconds.
WORD_PAIRS_LIMIT = 25_000_000


def split_lines(text: str) -> list[str]:
    """Lines with their endings kept (\\n, \\r\\n or \\r), so that joining them gives the text back."""
    return text.splitlines(keepends=True) if text else []


def diff_spans(old: list[str], new: list[str]) -> list[tuple[int, int, int, int]]:
    """(old_from, old_to, new_from, new_to) index ranges of the pieces that differ."""
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    return [(i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def word_edits(old: str, new: str, base: int) -> list[Edit]:
    """Word-level edits turning `old` (which starts at document offset `base`) into `new`; one whole replacement
    when the two have too little in common."""
    whole = [(base, base + len(old), new)]
    old_words, new_words = WORD.findall(old), WORD.findall(new)
    if "".join(old_words) != old or "".join(new_words) != new:
        return whole
    # The words both runs begin and end with are kept as they are and only the middles are compared: the matcher's
    # search is quadratic in a run of one repeated word (two lines of 4,000 `]` took 2 s), which the ends often are.
    head = 0
    while head < min(len(old_words), len(new_words)) and old_words[head] == new_words[head]:
        head += 1
    tail = 0
    while (tail < min(len(old_words), len(new_words)) - head
           and old_words[len(old_words) - 1 - tail] == new_words[len(new_words) - 1 - tail]):
        tail += 1
    old_middle, new_middle = old_words[head:len(old_words) - tail], new_words[head:len(new_words) - tail]
    matcher = SequenceMatcher(None, old_middle, new_middle, autojunk=False)

    def similar_enough(equal_in_middles: int) -> bool:   # the share of equal words in the two whole runs
        return 2 * (head + tail + equal_in_middles) >= SIMILAR_ENOUGH * (len(old_words) + len(new_words))

    # The first two counts bound the third from above in linear time, so runs that cannot be similar enough skip
    # its quadratic work (a 1,000-line selection filled with 63 lines spent 11.5 s in it).
    if (len(old_middle) * len(new_middle) > WORD_PAIRS_LIMIT
            or not similar_enough(min(len(old_middle), len(new_middle)))
            or not similar_enough(sum((Counter(old_middle) & Counter(new_middle)).values()))
            or not similar_enough(sum(block.size for block in matcher.get_matching_blocks()))):
        return whole
    starts = [0]
    for word in old_words:
        starts.append(starts[-1] + len(word))
    return [(base + starts[head + i1], base + starts[head + i2], "".join(new_middle[j1:j2]))
            for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def merge_touching(edits: list[Edit]) -> list[Edit]:
    """Join edits that touch (one ends where the next starts): two edits at one point would be ambiguous in LSP."""
    merged: list[Edit] = []
    for start, end, text in sorted(edits, key=lambda e: (e[0], e[1])):
        if merged and start <= merged[-1][1]:
            previous_start, previous_end, previous_text = merged[-1]
            merged[-1] = (previous_start, max(end, previous_end), previous_text + text)
        else:
            merged.append((start, end, text))
    return merged


def minimal_edits(old: str, new: str, base: int = 0) -> list[Edit]:
    """The edits that turn `old` (found at document offset `base`) into `new`; [] when they are equal."""
    if old == new:
        return []
    old_lines, new_lines = split_lines(old), split_lines(new)
    line_starts = [0]
    for line in old_lines:
        line_starts.append(line_starts[-1] + len(line))
    edits: list[Edit] = []
    for i1, i2, j1, j2 in diff_spans(old_lines, new_lines):
        old_part, new_part = "".join(old_lines[i1:i2]), "".join(new_lines[j1:j2])
        offset = base + line_starts[i1]
        if old_part and new_part:
            edits.extend(word_edits(old_part, new_part, offset))
        else:
            edits.append((offset, offset + len(old_part), new_part))
    return merge_touching(edits)


def apply_edits(text: str, edits: list[Edit]) -> str:
    """Apply non-overlapping edits given in original offsets (last first, so earlier offsets stay valid)."""
    for start, end, new_text in sorted(edits, key=lambda e: e[0], reverse=True):
        text = text[:start] + new_text + text[end:]
    return text
