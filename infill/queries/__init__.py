"""Per-language tree-sitter queries, shipped as package data. Captures: @scope (functions, classes, blocks that
bound a completion), @string and @comment (where inline completion stays quiet)."""
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def load_query(language: str) -> str:
    """The query source for `language` (e.g. 'python'), or '' when none ships."""
    path = resources.files(__package__) / f"{language}.scm"
    return path.read_text() if path.is_file() else ""
