"""Answers without the model: an LRU cache of recent results keyed by context, and typed-through reuse of the
suggestion last shown in each document.

Everything here is plain text and offsets; the server decides when to use it.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

from infill.clean import OPENERS, QUOTES   # the brackets and quotes editors close by themselves

MIN_REACH_CHARS = 4000     # document text each side of the range that the cache key covers, at least
CHARS_PER_TOKEN_BOUND = 16 # more than a prompt token spans in code (a long run of spaces or `=` is one token)
DIGEST_OVER_CHARS = 8192   # longer windows are keyed by a digest, so 64 keys do not hold megabytes
CACHE_ENTRIES = 64

AUTO_CLOSERS = "".join(OPENERS.values()) + "".join(QUOTES)   # what an editor types after the cursor itself


def reach_for(max_prompt_tokens: int | None) -> int:
    """Characters each side of the cursor that a prompt of `max_prompt_tokens` can read: all of them must be in
    the key, or an edit the model would have read (a renamed function 5,000 characters up, with a 4,096-token
    context) is answered from the cache as if it had not happened."""
    return max(MIN_REACH_CHARS, CHARS_PER_TOKEN_BOUND * (max_prompt_tokens or 0))


def window(text: str) -> str | bytes:
    return text if len(text) <= DIGEST_OVER_CHARS else hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=20).digest()


def context_key(source: str, start: int, end: int, language_id: str | None, mode: str, options: tuple,
                reach: int = MIN_REACH_CHARS) -> tuple:
    """What a result depends on: the text around the range as far as the prompt can read (`reach` characters
    each side, reach_for), the language, the mode and the model options. Offsets are not part of it, so the same
    context elsewhere in the file (or after an edit beyond the prompt's reach) hits."""
    return (window(source[max(0, start - reach):start]), source[start:end], window(source[end:end + reach]),
            language_id, mode, options)


@dataclass(frozen=True)
class Cached:
    texts: tuple[str, ...]   # distinct cleaned candidates, best first
    several: bool            # made for an explicit invoke (several candidates were asked for)
    replace: int = 0         # characters after the cursor each text replaces (closers the editor auto-typed)
    asked_only: bool = False # made where only an explicit request completes (in a string or comment)


class ResultCache:
    """Least recently used first out."""

    def __init__(self, capacity: int = CACHE_ENTRIES) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple, Cached] = OrderedDict()

    def get(self, key: tuple, several: bool = False) -> Cached | None:
        """An entry usable for the request: an invoke (several=True) needs an entry that asked for several; typing
        (several=False) cannot use one made where only an explicit request completes."""
        entry = self._entries.get(key)
        if entry is None or (several and not entry.several) or (not several and entry.asked_only):
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple, texts: list[str], several: bool, replace: int = 0, asked_only: bool = False) -> None:
        if not texts:
            return
        old = self._entries.get(key)
        if old is not None and old.several and not several:
            self._entries.move_to_end(key)  # keep the richer entry
            return
        self._entries[key] = Cached(tuple(texts), several, replace, asked_only)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class ShownSuggestion:
    """The candidates last offered at one cursor, with the document around it at that time."""
    before: str              # document text before the cursor
    after: str               # and after it
    texts: tuple[str, ...]
    several: bool
    replace: int = 0         # characters after the cursor the texts replace; the rests replace the same ones
    min_typed: int = 0       # typed-through only once this much is typed: a completion list item's length, for an
                             # answer made with the item selected (the list closed without it: the item was not
                             # chosen, and the rest of it must not come back as ghost text)
    ids: tuple[str, ...] = ()  # the offered items' ids, one per text: the rests typed through keep them, so that one
                             # suggestion is shown, displayed and accepted once however many pieces it comes in

    @classmethod
    def at(cls, source: str, cursor: int, texts: list[str], several: bool, replace: int = 0,
           ids: tuple[str, ...] = ()) -> "ShownSuggestion":
        return cls(source[:cursor], source[cursor:], tuple(texts), several, replace, ids=ids)

    def rests_to_offer(self, source: str, cursor: int, wanted: int) -> "Remainders | None":
        """The rests to answer with while typing through: every one that still fits when these were an invoke's
        candidates (the user may have cycled to any of them, and an editor keeps the one on screen only while the
        answer holds its id), else the first `wanted`."""
        rests = self.remainders(source, cursor)
        if rests is None or self.several:
            return rests
        return Remainders(rests.texts[:wanted], rests.replace, rests.ids[:wanted])

    def remainders(self, source: str, cursor: int) -> "Remainders | None":
        """While what was typed since is a prefix of a candidate, the rest of each such candidate (best first).
        Closers the editor auto-typed for brackets or quotes typed from the suggestion sit between the cursor and
        the old text after it: the rests replace them. None when the document moved on in any other way (the
        suggestion is gone)."""
        anchor = len(self.before)
        auto_typed = len(source) - cursor - len(self.after)
        # The cursor went over closers the texts replace (VS Code types over its own `)` by moving the cursor,
        # changing nothing): they are typed from the suggestion, as its own text, and replaced no more.
        overtyped = max(0, -auto_typed)
        if cursor <= anchor or overtyped > self.replace or len(source) < anchor + len(self.after):
            return None
        if not (source.startswith(self.before) and source.endswith(self.after)):
            return None
        auto_typed = max(0, auto_typed)
        typed = source[anchor:cursor]
        if len(typed) < self.min_typed or not auto_closes(typed, source[cursor:cursor + auto_typed]):
            return None
        replace = auto_typed + self.replace - overtyped
        closers = source[cursor:cursor + replace]   # a rest that only writes the closers it replaces changes nothing
        ids = self.ids + (None,) * (len(self.texts) - len(self.ids))
        rests = [(text[len(typed):], suggestion_id) for text, suggestion_id in zip(self.texts, ids)
                 if text.startswith(typed) and len(text) > len(typed) and text[len(typed):] != closers]
        # and one that would not write the auto-typed closers back would delete them
        rests = [(rest, suggestion_id) for rest, suggestion_id in rests if in_order(closers[:auto_typed], rest)]
        return Remainders([rest for rest, _ in rests], replace, [i for _, i in rests]) if rests else None


@dataclass(frozen=True)
class Remainders:
    texts: list[str]   # the rest of each candidate still matching what was typed, best first
    replace: int       # characters after the cursor each rest replaces
    ids: list[str | None] = field(default_factory=list)   # the id each candidate was offered under (None: unknown)


def on_the_cursors_line(rests: Remainders, replaced: str) -> Remainders | None:
    """The rests as editors can show them: VS Code draws no ghost text for a range over two lines, which typing
    through past Enter between the editor's `{}` makes (the rests replace the `\\n}` Enter put below). A rest ending
    with the replaced text goes in before it, at the cursor, the closers staying; one that does not cannot be
    shown. None when no rest can."""
    if "\n" not in replaced and "\r" not in replaced:
        return rests
    kept = [(text[:len(text) - len(replaced)], suggestion_id) for text, suggestion_id in zip(rests.texts, rests.ids)
            if text.endswith(replaced) and len(text) > len(replaced)]
    return Remainders([text for text, _ in kept], 0, [i for _, i in kept]) if kept else None


def in_order(chars: str, text: str) -> bool:
    """Whether `chars` occur in `text` in this order (not necessarily next to each other)."""
    rest = iter(text)
    return all(char in rest for char in chars)


def auto_closes(typed: str, inserted: str) -> bool:
    """Whether `inserted` (text that appeared after the cursor while `typed` was typed) can only be closers an
    editor auto-typed: in order, some of the closers that `typed`'s still open brackets and quotes need. After a
    line break typed, also line breaks and indentation (Enter between `{` and `}` puts the `}` on a line below)."""
    if "\n" in typed:
        inserted = "".join(inserted.split())
    if not inserted:
        return True
    needed: list[str] = []   # closers owed, innermost last
    for char in typed:
        if needed and char == needed[-1]:
            needed.pop()
        elif char in OPENERS:
            needed.append(OPENERS[char])
        elif char in QUOTES:
            needed.append(char)
    return in_order(inserted, "".join(reversed(needed)))
