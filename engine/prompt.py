"""Turning prefix and suffix text into prompt tokens, shared by the diffusion engine and the AR twin."""
from __future__ import annotations


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of `text` as plain text: split_special_tokens, because a file that contains the text "<eos>" (this
    repository does) is code, not an end marker."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"] if text else []


def prefix_room(suffix_tokens: int, budget: int) -> int:
    """The prefix's share of `budget` tokens beside a suffix of `suffix_tokens`: the suffix keeps at most a third."""
    return budget - min(suffix_tokens, budget // 3)


def trim_context(prefix_ids: list[int], suffix_ids: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Fit both into `budget` tokens: the suffix keeps at most a third (its nearest tokens, which matter most), the
    prefix the rest (its newest tokens)."""
    prefix_keep = min(len(prefix_ids), prefix_room(len(suffix_ids), budget))
    suffix_keep = budget - prefix_room(len(suffix_ids), budget)
    return prefix_ids[len(prefix_ids) - prefix_keep:], suffix_ids[:suffix_keep]
