"""How long the server stops answering while it plans a fill in a large document (bench/RESULTS.md, session 50).

tree-sitter parses with the GIL held, and the fill's first parse of a large document runs on the model's worker
thread, so the event loop (the same process) could not read or answer anything meanwhile: another document's
typing, a cancel, a status request. This opens a Python document of about 2 MB (click's core.py repeated) through a
real LSP client, asks for an explicit inline completion at its end, and while that runs sends `infill.status`
again and again, one at a time; a status answer comes from the event loop alone, so its longest wait is the stall.

    python -m bench.event_loop_stall [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import inspect
import json
import os
import platform
import statistics
import time

import click.core
from lsprotocol import types
from pytest_lsp import ClientServerConfig, client_capabilities

from bench.typing import MODEL_READY_S, SERVER_COMMAND

TARGET_BYTES = 2 * 1024 * 1024 - 64 * 1024   # under the server's 2 MB limit


def large_document() -> str:
    """click's core.py repeated (its code is held out of the model's training), then an open function body."""
    with open(inspect.getsourcefile(click.core), encoding="utf-8") as handle:
        module = handle.read()
    copies = max(1, TARGET_BYTES // len(module.encode("utf-8")))
    return module * copies + "\n\ndef total(values):\n    result = 0\n    for value in values:\n        "


async def measure(steps: int) -> dict:
    config = ClientServerConfig(server_command=SERVER_COMMAND, server_env={**os.environ, "PYTHONUNBUFFERED": "1"})
    client = await config.start()
    client.feature("diffusionInfill/status")(lambda params: None)
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"), initialization_options={"steps": steps}))

        async def status() -> dict:
            return await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="infill.status", arguments=[]))

        deadline = time.monotonic() + MODEL_READY_S
        while (state := (await status())["state"]) == "loading":
            if time.monotonic() > deadline:
                raise SystemExit("the model did not load in time")
            await asyncio.sleep(0.2)
        if state != "ready":
            raise SystemExit(f"the model did not load: {state}")
        text = large_document()
        uri = "file:///tmp/event_loop_stall/core_repeated.py"
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="python", version=1, text=text)))
        lines = text.split("\n")
        position = types.Position(line=len(lines) - 1, character=len(lines[-1]))
        idle = [await timed(status) for _ in range(20)]   # the same pings with nothing else running
        started = time.monotonic()
        fill = asyncio.ensure_future(client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position,
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))))
        during = []
        while not fill.done():
            during.append(await timed(status))
        fill_ms = (time.monotonic() - started) * 1000
        await fill
        await asyncio.wait_for(client.shutdown_session(), 60)
        return {"document_bytes": len(text.encode("utf-8")), "fill_ms": round(fill_ms, 1),
                "pings_during_fill": len(during), "longest_ping_ms": round(max(during), 1),
                "median_ping_ms": round(statistics.median(during), 1),
                "idle_longest_ping_ms": round(max(idle), 1), "idle_median_ping_ms": round(statistics.median(idle), 1)}
    finally:
        server = client._server
        if server is not None and server.returncode is None:
            server.kill()
        await client.stop()


async def timed(call) -> float:
    started = time.monotonic()
    await call()
    return (time.monotonic() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="denoising steps of the fill (the model's time is not "
                                                             "the point; the parse is)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args.steps))
    result.update(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  machine=platform.machine(), cpus=os.cpu_count())
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
