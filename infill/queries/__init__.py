"""Per-language tree-sitter queries, shipped as package data (`<grammar>.scm`).

Capture names every query uses:
  @function, @class, @block  scopes a completion belongs to (innermost one = the span)
  @statement                 the statement the cursor is in
  @string, @comment          where inline completion stays quiet
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

SCOPE_CAPTURES = ("function", "class", "block")


@lru_cache(maxsize=None)
def load_query(language_name: str) -> str:
    """The query source for a grammar name (e.g. 'python'); FileNotFoundError when none ships."""
    path = resources.files(__package__) / f"{language_name}.scm"
    if not path.is_file():
        raise FileNotFoundError(f"no query file {language_name}.scm in infill/queries")
    return path.read_text(encoding="utf-8")
