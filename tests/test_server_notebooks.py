"""Notebooks through a real LSP client (pytest-lsp over stdio, the embedded model): cells synced with
notebookDocument/*, each cell answered in its own offsets with the cells above it as context, changes applied by
LSP's rules, cells and notebooks closed cleanly, and a notebook's cells never lent to it as snippets."""
from __future__ import annotations

import asyncio

import attrs
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import client_capabilities

from conftest import (FAST_OPTIONS, execute, inline_at, lsp_session, messages_since, open_document,
                      wait_for_message, wait_for_model, wait_until_busy)

pytestmark = pytest.mark.asyncio

INVOKED = types.InlineCompletionTriggerKind.Invoked


def notebook_capabilities() -> types.ClientCapabilities:
    """VS Code's capabilities as pytest-lsp has them (1.65), with notebook sync as VS Code has offered it since."""
    capabilities = client_capabilities("visual-studio-code")
    return attrs.evolve(capabilities, notebook_document=types.NotebookDocumentClientCapabilities(
        synchronization=types.NotebookDocumentSyncClientCapabilities()))


def cell_uri(notebook: str, fragment: str) -> str:
    return f"vscode-notebook-cell:{notebook.removeprefix('file://')}#{fragment}"


def open_notebook(client, notebook: str, cells: list[tuple[str, str, str]]) -> list[str]:
    """cells: (fragment, languageId, text); markdown cells by their languageId. Returns the cells' URIs."""
    uris = [cell_uri(notebook, fragment) for fragment, _, _ in cells]
    client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(
            uri=notebook, notebook_type="jupyter-notebook", version=1,
            cells=[types.NotebookCell(kind=types.NotebookCellKind.Markup if language == "markdown"
                                      else types.NotebookCellKind.Code, document=uri)
                   for uri, (_, language, _) in zip(uris, cells)]),
        cell_text_documents=[types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
                             for uri, (_, language, text) in zip(uris, cells)]))
    return uris


def change_cell(client, notebook: str, version: int, uri: str, cell_version: int, start: types.Position,
                end: types.Position, text: str, structure: types.NotebookDocumentCellChangeStructure | None = None):
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=notebook, version=version),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(
            structure=structure,
            text_content=[types.NotebookDocumentCellContentChanges(
                document=types.VersionedTextDocumentIdentifier(uri=uri, version=cell_version),
                changes=[types.TextDocumentContentChangePartial(range=types.Range(start=start, end=end),
                                                                text=text)])]))))


def reopen_cell(client, notebook: str, version: int, index: int, uri: str, language: str, text: str) -> None:
    """The cell at `index` closed and opened again in one change, as a client changing its language sends it."""
    kind = types.NotebookCellKind.Markup if language == "markdown" else types.NotebookCellKind.Code
    structure = types.NotebookDocumentCellChangeStructure(
        array=types.NotebookCellArrayChange(start=index, delete_count=1,
                                            cells=[types.NotebookCell(kind=kind, document=uri)]),
        did_open=[types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)],
        did_close=[types.TextDocumentIdentifier(uri=uri)])
    client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
        notebook_document=types.VersionedNotebookDocumentIdentifier(uri=notebook, version=version),
        change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(structure=structure))))


CELLS = [("md", "markdown", "Count the words in each line of a text."),
         ("def", "python", "def count_words(line):\n    return len(line.split())\n"),
         ("sql", "sql", "SELECT count_words FROM lines"),
         ("use", "python", "lines = ['a b', 'c']\ntotal = \n")]


async def test_a_cell_is_answered_in_its_own_offsets_with_the_cells_above_it_as_context():
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}, capabilities=notebook_capabilities(),
                           root_uri="file:///tmp/notebooks") as client:
        sync = client.initialize_result.capabilities.notebook_document_sync
        assert sync is not None and sync.notebook_selector   # asked for, so VS Code syncs its cells
        await wait_for_model(client)
        notebook = "file:///tmp/notebooks/words.ipynb"
        uris = open_notebook(client, notebook, CELLS)
        answer = await inline_at(client, uris[3], 1, 8, INVOKED)
        for item in answer.items:
            assert item.range.start == types.Position(1, 8)   # the cell's own line, not the notebook's
        last_run = (await execute(client, "infill.metrics"))["lastRun"]
        head = ("# Count the words in each line of a text.\n\n"
                "def count_words(line):\n    return len(line.split())\n\n")   # not the SQL cell
        assert last_run["earlierCellsChars"] == len(head)
        # The code cell under the markdown one reads only that.
        await inline_at(client, uris[1], 1, 4, INVOKED)
        assert (await execute(client, "infill.metrics"))["lastRun"]["earlierCellsChars"] == len(head.split("def")[0])


async def test_cell_changes_follow_lsp_line_rules_and_cells_come_and_go():
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}, capabilities=notebook_capabilities(),
                           root_uri="file:///tmp/notebooks") as client:
        await wait_for_model(client)
        notebook = "file:///tmp/notebooks/changes.ipynb"
        first, second = open_notebook(client, notebook, [("a", "python", "x = 1"), ("b", "python", "y = 2\n")])
        # A form feed is no line break in LSP (pygls' own handling split lines there), and a character past the end
        # of a last line without a newline is its end: the new line is line 1, and it is there to select.
        change_cell(client, notebook, 2, first, 2, types.Position(0, 5), types.Position(0, 9), "\x0c\nz = x + 1")
        answer = await execute(client, "infill.rewriteSelection",
                               {"uri": first, "range": {"start": {"line": 1, "character": 0},
                                                        "end": {"line": 1, "character": 9}}})
        assert "outside" not in answer.get("message", ""), answer
        # A cell added between the two reads the one above it.
        added = cell_uri(notebook, "c")
        structure = types.NotebookDocumentCellChangeStructure(
            array=types.NotebookCellArrayChange(start=1, delete_count=0, cells=[
                types.NotebookCell(kind=types.NotebookCellKind.Code, document=added)]),
            did_open=[types.TextDocumentItem(uri=added, language_id="python", version=1, text="w = ")])
        client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
            notebook_document=types.VersionedNotebookDocumentIdentifier(uri=notebook, version=3),
            change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(structure=structure))))
        await inline_at(client, added, 0, 4, INVOKED)
        assert (await execute(client, "infill.metrics"))["lastRun"]["earlierCellsChars"] == len(
            "x = 1\x0c\nz = x + 1\n\n")
        # The same cell closed and opened again in one change (a client changing its language): it stays open,
        # with its new text (pygls opened it, then closed it).
        reopen_cell(client, notebook, 4, 1, added, "python", "v = ")
        await inline_at(client, added, 0, 4, INVOKED)
        assert (await execute(client, "infill.metrics"))["lastRun"]["earlierCellsChars"] == len(
            "x = 1\x0c\nz = x + 1\n\n")
        # Reopened as another kind (a markdown cell now): the cell below reads it as a comment, not as code.
        reopen_cell(client, notebook, 5, 1, added, "markdown", "Sum them.")
        await inline_at(client, second, 1, 0, INVOKED)
        assert (await execute(client, "infill.metrics"))["lastRun"]["earlierCellsChars"] == len(
            "x = 1\x0c\nz = x + 1\n\n# Sum them.\n\n")
        # Closing the notebook closes its cells.
        client.notebook_document_did_close(types.DidCloseNotebookDocumentParams(
            notebook_document=types.NotebookDocumentIdentifier(uri=notebook),
            cell_text_documents=[types.TextDocumentIdentifier(uri=uri) for uri in (first, added, second)]))
        with pytest.raises(JsonRpcException, match="unknown document"):
            await inline_at(client, second, 0, 0, INVOKED)


async def test_a_cell_of_another_language_by_its_cell_magic_is_plain_text_without_the_python_cells():
    # Jupyter keeps a `%%bash` cell's languageId `python`: it was planned and parse-checked as Python, under the
    # Python cells above, and every right bash answer was refused as breaking the syntax.
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}, capabilities=notebook_capabilities(),
                           root_uri="file:///tmp/notebooks") as client:
        await wait_for_model(client)
        notebook = "file:///tmp/notebooks/magic.ipynb"
        uris = open_notebook(client, notebook, [("py", "python", "import pandas as pd\n"),
                                                ("sh", "python", "%%bash\nls -l | grep \n"),
                                                ("time", "python", "%%time\ntotal = \n")])
        seen = len(client.messages)
        await inline_at(client, uris[1], 1, 12, INVOKED)
        assert (await execute(client, "infill.metrics"))["lastRun"]["earlierCellsChars"] == 0
        assert not messages_since(client, seen, "syntax"), client.messages[seen:]
        assert not messages_since(client, seen, "grammar"), client.messages[seen:]   # its plain text is no news
        await inline_at(client, uris[2], 1, 8, INVOKED)   # a Python cell magic: Python, with the cells above
        assert (await execute(client, "infill.metrics"))["lastRun"]["earlierCellsChars"] == len(
            "import pandas as pd\n\n")


async def test_a_change_to_a_notebook_that_is_not_open_is_reported_and_ignored():
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}, capabilities=notebook_capabilities(),
                           root_uri="file:///tmp/notebooks") as client:
        notebook = "file:///tmp/notebooks/never-opened.ipynb"
        seen = len(client.messages)
        change_cell(client, notebook, 2, cell_uri(notebook, "a"), 2, types.Position(0, 0), types.Position(0, 0), "x")
        await wait_for_message(client, seen, "not open")
        assert not messages_since(client, seen, "error"), client.messages[seen:]
        assert (await execute(client, "infill.status"))["state"] in ("loading", "ready")   # still up


async def test_another_notebooks_cells_lend_snippets_by_name_and_a_notebooks_own_cells_do_not():
    async with lsp_session({"diffusionInfill": {**FAST_OPTIONS, "relatedFiles": "on"}},
                           capabilities=notebook_capabilities(), root_uri="file:///tmp/notebooks") as client:
        await wait_for_model(client)
        # (small enough to fit the embedded model's quarter of 192 tokens for snippets)
        shapes = "file:///tmp/notebooks/shapes.ipynb"
        open_notebook(client, shapes, [("x", "python", "import math\n"),
                                       ("y", "python", "def circle_area(radius):\n    return radius * radius\n")])
        notebook = "file:///tmp/notebooks/areas.ipynb"
        uris = open_notebook(client, notebook, [
            ("a", "python", "def rectangle_area(width, height):\n    return width * height\n"),
            ("b", "python", "radius = 2\nwidth, height = 3, 4\narea = rectangle_area(width, height)\narea += \n"),
            ("c", "python", "print(rectangle_area(width, height), circle_area(radius))\n")])
        await inline_at(client, uris[1], 3, 8, INVOKED)
        last_run = (await execute(client, "infill.metrics"))["lastRun"]
        assert last_run["relatedFiles"] == ["shapes.ipynb cell 2"]
        assert last_run["earlierCellsChars"] > 0


async def test_an_edit_to_a_cell_above_stops_the_suggestion_being_written_below_it():
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}, capabilities=notebook_capabilities(),
                           root_uri="file:///tmp/notebooks") as client:
        await wait_for_model(client)
        notebook = "file:///tmp/notebooks/stale.ipynb"
        above, below = open_notebook(client, notebook, [("a", "python", "def double(x):\n    return 2 * x\n"),
                                                        ("b", "python", "value = double(3)\nprint(\n")])
        before = (await execute(client, "infill.status"))["counters"]["cancelled"]
        pending = asyncio.ensure_future(inline_at(client, below, 1, 6, INVOKED))
        await wait_until_busy(client)
        # Only the cell above changes: the running suggestion read the old one.
        change_cell(client, notebook, 2, above, 2, types.Position(0, 4), types.Position(0, 10), "twice")
        assert len((await pending).items) == 0
        assert (await execute(client, "infill.status"))["counters"]["cancelled"] == before + 1
