"""Notebook documents as the server sees them: which notebook a cell belongs to, where it stands, and the cells above
it as the context it is written in (infill.notebook).

The editor syncs notebooks through notebookDocument/* (when the client can: VS Code can, Neovim does not); each cell
is then a text document of pygls' workspace, and the notebook lists them in order.
"""
from __future__ import annotations

from lsprotocol import types

from infill.languages import grammar_for
from infill.notebook import Cell, notebook_head

from .protocol import document_key

# What the server asks the client to sync: the cells of every notebook, whatever their language, so that markdown
# cells above a code cell reach the model as comments (the client's own language list still decides where
# suggestions are asked for).
NOTEBOOK_SYNC = types.NotebookDocumentSyncOptions(notebook_selector=[
    types.NotebookDocumentFilterWithCells(cells=[types.NotebookCellLanguage(language="*")], notebook="*")])


def notebook_of(workspace, uri: str) -> types.NotebookDocument | None:
    return workspace.get_notebook_document(cell_uri=uri)


def cell_index(notebook: types.NotebookDocument, uri: str) -> int | None:
    key = document_key(uri)
    return next((i for i, cell in enumerate(notebook.cells) if document_key(cell.document) == key), None)


def cell_name(workspace, uri: str) -> str | None:
    """"cell 3" for the third cell of its notebook (cells share the notebook's path); None outside a notebook."""
    notebook = notebook_of(workspace, uri)
    index = None if notebook is None else cell_index(notebook, uri)
    return None if index is None else f"cell {index + 1}"


def cells_whose_context_changed(workspace, notebook_uri: str, cells: types.NotebookDocumentCellChanges) -> list[str]:
    """The URIs of the cells below a changed cell, an added one or a removed one: what was above them changed
    (the change is applied already)."""
    notebook = workspace.get_notebook_document(notebook_uri=notebook_uri)
    if notebook is None:
        return []
    below = [cell_index(notebook, text.document.uri) for text in cells.text_content or []]
    starts = [index + 1 for index in below if index is not None]
    if cells.structure is not None:
        starts.append(cells.structure.array.start)
    return [cell.document for cell in notebook.cells[min(starts):]] if starts else []


def same_notebook(workspace, uri: str, other: str) -> bool:
    notebook = notebook_of(workspace, uri)
    return notebook is not None and notebook is notebook_of(workspace, other)


def earlier_cells(workspace, documents: dict, uri: str, language_id: str | None) -> list[Cell]:
    """The cells above the cell `uri` that it is written after: code cells of its language (`language_id`: the
    cell's own, or plain text for a `%%bash` cell) and markdown cells, with their text in `documents` (the open
    documents as the request found them)."""
    notebook = notebook_of(workspace, uri)
    index = None if notebook is None else cell_index(notebook, uri)
    current = documents.get(document_key(uri))
    if index is None or current is None:
        return []
    cells = []
    for cell in notebook.cells[:index]:
        document = documents.get(document_key(cell.document))
        if document is None:
            continue
        if cell.kind == types.NotebookCellKind.Markup:
            cells.append(Cell(document.source, code=False))
        elif document.language_id == language_id:
            cells.append(Cell(document.source, code=True))
    return cells


def head_of(workspace, documents: dict, uri: str, language_id: str | None, path: str | None, limit: int) -> str:
    """The earlier cells as the text that runs before the cell (at most `limit` characters); "" outside a
    notebook."""
    cells = earlier_cells(workspace, documents, uri, language_id)
    return notebook_head(cells, grammar_for(language_id, path), limit) if cells else ""
