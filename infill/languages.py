"""Which tree-sitter grammar parses a document: from the LSP languageId, else the file extension."""
from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import PurePath

import tree_sitter

from .queries import load_query

# grammar name -> (module of the official wheel, function returning the language pointer)
GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "java": ("tree_sitter_java", "language"),
    "lua": ("tree_sitter_lua", "language"),
}

LANGUAGE_IDS = {
    "python": "python", "javascript": "javascript", "javascriptreact": "javascript", "typescript": "typescript",
    "typescriptreact": "tsx", "go": "go", "rust": "rust", "c": "c", "cpp": "cpp", "java": "java", "lua": "lua",
}

EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".mts": "typescript", ".tsx": "tsx", ".go": "go", ".rs": "rust",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".java": "java",
    ".lua": "lua",
}


def grammar_for(language_id: str | None, path: str | None) -> str | None:
    """Grammar name, or None when no grammar ships for this document (plain-text fallback)."""
    if language_id and language_id.lower() in LANGUAGE_IDS:
        return LANGUAGE_IDS[language_id.lower()]
    if path:
        return EXTENSIONS.get(PurePath(path).suffix.lower())
    return None


@lru_cache(maxsize=None)
def language(grammar: str) -> tree_sitter.Language:
    module_name, function = GRAMMARS[grammar]
    return tree_sitter.Language(getattr(importlib.import_module(module_name), function)())


@lru_cache(maxsize=None)
def query(grammar: str) -> tree_sitter.Query:
    return tree_sitter.Query(language(grammar), load_query(grammar))


def parse(grammar: str, source: bytes) -> tree_sitter.Tree:
    # Parsers are cheap; one per call keeps this safe to use from several threads.
    return tree_sitter.Parser(language(grammar)).parse(source)
