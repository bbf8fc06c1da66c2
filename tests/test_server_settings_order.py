"""Settings and lifecycle messages in the orders real clients send them, over real JSON-RPC to `python -m
lsp_server`: Neovim's settings twice at start, settings before `initialized`, two pulls in a row, notifications
before `initialize`, a shutdown while the model loads."""
from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pytest_lsp import client_capabilities

from conftest import (FAST_OPTIONS, execute, lsp_session, messages_since, progress_reports_of, server_config,
                      wait_for_model, wait_until)

pytestmark = pytest.mark.asyncio


async def started(options: dict | None = None):
    """A server after `initialize`, before `initialized`."""
    client = await server_config().start()
    client.capabilities = client_capabilities("visual-studio-code")   # (initialize_session would set them)
    client.initialize_result = await client.initialize_async(types.InitializeParams(
        capabilities=client.capabilities, initialization_options=options))
    return client


async def ended(client) -> None:
    try:
        await asyncio.wait_for(client.shutdown_session(), 60)
    finally:
        if client._server is not None and client._server.returncode is None:
            client._server.kill()
        await client.stop()


async def test_neovims_settings_sent_twice_at_start_warn_once():
    """Neovim sends its `settings` table as initializationOptions and pushes it again right after `initialized`:
    every problem with it was shown twice (and again at every push of the same table)."""
    settings = {"diffusionInfill": {**FAST_OPTIONS, "seed": "forty-two", "frobnicate": 1}}
    client = await started(settings)
    try:
        client.initialized(types.InitializedParams())
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=settings))
        await wait_for_model(client)
        await execute(client, "infill.status")   # both notifications are handled before this answer
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=settings))
        await execute(client, "infill.status")
        assert len(messages_since(client, 0, "seed", "forty-two")) == 1
        assert len(messages_since(client, 0, "unknown option", "frobnicate")) == 1
    finally:
        await ended(client)


async def test_settings_pushed_before_initialized_load_the_model_once_with_them():
    """Between initialize and initialized a pushed setting started a load that `initialized` then cut off."""
    client = await started({"diffusionInfill": FAST_OPTIONS})
    try:
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"diffusionInfill": {"contextTokens": 128, "steps": "many"}}))
        await execute(client, "infill.status")   # (a request's answer: the notification before it was handled)
        client.initialized(types.InitializedParams())
        assert "model ready" in (await wait_for_model(client)).message
        assert (await execute(client, "infill.metrics"))["engine"]["max_prompt_tokens"] == 128
        await asyncio.sleep(1)   # a second load would have begun by now
        assert len(progress_reports_of(client, types.WorkDoneProgressBegin)) == 1
        assert len(messages_since(client, 0, "steps = 'many'")) == 1
    finally:
        await ended(client)


async def test_two_pulls_in_a_row_load_the_model_once():
    """Both notifications read the options from before either answer came: both saw the model option change and
    loaded it, the first load cut off by the second."""
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}) as session:
        await wait_for_model(session)
        session.set_configuration({**FAST_OPTIONS, "contextTokens": 128}, section="diffusionInfill")
        session.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        session.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await wait_until(lambda: len(progress_reports_of(session, types.WorkDoneProgressEnd)) >= 2, 120, "a reload")
        await asyncio.sleep(1)
        ends = [end.message for end in progress_reports_of(session, types.WorkDoneProgressEnd)]
        assert len(ends) == 2 and all("model ready" in end for end in ends)
        assert (await execute(session, "infill.metrics"))["engine"]["max_prompt_tokens"] == 128


async def test_notifications_before_initialize_are_dropped_without_an_error():
    """They ran their handlers, which read a workspace not made yet: "Error in server: AttributeError"."""
    client = await server_config().start()
    try:
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"diffusionInfill": {"threads": 1}}))
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={"diffusionInfill": FAST_OPTIONS}))
        assert "model ready" in (await wait_for_model(client)).message
        assert not messages_since(client, 0, "error in server")
        assert len(progress_reports_of(client, types.WorkDoneProgressBegin)) == 1
    finally:
        await ended(client)


async def test_a_shutdown_while_the_model_loads_ends_the_progress():
    """pygls cancels every running handler at shutdown, the load's watcher too: its progress stayed begun, the
    editor showing "loading" until the process went."""
    client = await server_config().start()
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={"diffusionInfill": FAST_OPTIONS}))
        await wait_until(lambda: progress_reports_of(client, types.WorkDoneProgressBegin), 60, "the load to begin")
        await asyncio.wait_for(client.shutdown_async(None), 60)
        end = await wait_until(lambda: progress_reports_of(client, types.WorkDoneProgressEnd), 30, "its end")
        assert end[0].message == "the server is shutting down"   # (the imports alone take longer than this)
        client.exit(None)
        await asyncio.wait_for(client._server.wait(), 60)
    finally:
        if client._server is not None and client._server.returncode is None:
            client._server.kill()
        await client.stop()


async def test_a_push_while_a_pull_is_answered_keeps_the_pulled_settings():
    """A newer pull supersedes an older one's answer, but a push (only the settings it changes) does not: the
    pulled section was dropped when any notification came in between."""
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}) as session:
        await wait_for_model(session)

        async def slowly(params: types.ConfigurationParams):
            await asyncio.sleep(1.0)
            return [{**FAST_OPTIONS, "contextTokens": 128}]

        session.protocol.fm.features[types.WORKSPACE_CONFIGURATION] = slowly
        session.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await asyncio.sleep(0.3)
        session.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"diffusionInfill": {"completionItems": "on"}}))
        await wait_until(lambda: len(progress_reports_of(session, types.WorkDoneProgressEnd)) >= 2, 120, "a reload")
        assert (await execute(session, "infill.metrics"))["engine"]["max_prompt_tokens"] == 128
