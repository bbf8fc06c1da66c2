"""Whether a text can reach the model at all: the tokenizer takes valid Unicode without NUL bytes only."""
from __future__ import annotations


def unreadable_text(text: str) -> str | None:
    """Why text cannot reach the model at all (NUL bytes, lone surrogates), else None."""
    if "\x00" in text:
        return "the document contains NUL bytes (a binary file?): nothing to complete"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "the document is not valid Unicode (it holds lone surrogates): nothing to complete"
    return None
