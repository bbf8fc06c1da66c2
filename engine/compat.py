"""Differences between the transformers releases we support, kept in one place.

transformers 5.24 renamed every model forward's `past_key_values` argument to `cache`; the old name still works
there with a FutureWarning and is removed in 5.40. The name is read off the forward's signature once per class, so
the same call runs on 5.23 and on releases without the old name.
"""
from __future__ import annotations

import inspect
from functools import lru_cache


@lru_cache(maxsize=None)
def _keyword_of(module_type: type) -> str:
    parameters = inspect.signature(module_type.forward).parameters  # follows the deprecation wrapper's __wrapped__
    return "cache" if "cache" in parameters else "past_key_values"


def cache_keyword(module) -> str:
    """The name under which `module`'s forward takes a KV cache."""
    return _keyword_of(type(module))


def with_cache(module, cache) -> dict:
    """The keyword argument that hands `cache` to `module`'s forward, as a dict to unpack into the call."""
    return {cache_keyword(module): cache}
