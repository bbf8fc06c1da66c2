"""The server's pure pieces, without a process or a model: positions, options, command arguments."""
from __future__ import annotations

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import PositionCodec

from lsp_server.config import ServerOptions, parse_options
from lsp_server.positions import Snapshot
from lsp_server.server import command_arguments

UTF32 = PositionCodec(types.PositionEncodingKind.Utf32)
UTF8 = PositionCodec(types.PositionEncodingKind.Utf8)


def at(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


@pytest.mark.parametrize("source, position, offset", [
    ("ab\ncd\n", at(0, 0), 0),
    ("ab\ncd\n", at(1, 2), 5),          # end of a line
    ("ab\ncd\n", at(2, 0), 6),          # the empty line after the final newline
    ("ab\ncd\n", at(3, 0), None),       # past the last line
    ("ab\ncd\n", at(0, 3), None),       # past the end of a line: no clamping
    ("ab\r\ncd", at(1, 1), 5),          # CRLF is one line break
    ("ab\rcd", at(1, 1), 4),            # so is a lone CR
    ("a\x0cb\n", at(0, 2), 2),          # a form feed is not a line break for LSP
    ("s = '😋' + x", at(0, 8), 7),      # UTF-16: the emoji is two units
    ("s = '😋' + x", at(0, 6), None),   # between its two halves
    ("", at(0, 0), 0),
    ("", at(0, 1), None),
])
def test_offsets_from_utf16_positions(source, position, offset):
    assert Snapshot("file:///x.py", source).offset_of(position) == offset


def test_other_encodings_count_their_own_units():
    source = "é😋x\n"
    assert Snapshot("file:///x.py", source, codec=UTF32).offset_of(at(0, 2)) == 2
    assert Snapshot("file:///x.py", source, codec=UTF8).offset_of(at(0, 6)) == 2   # é = 2 bytes, 😋 = 4
    assert Snapshot("file:///x.py", source, codec=UTF8).offset_of(at(0, 1)) is None


def test_offsets_and_positions_round_trip():
    source = "def f():\r\n    return '😋'\n\tx = 1\ry\n"
    snap = Snapshot("file:///x.py", source)
    line_breaks = {i for i, ch in enumerate(source) if ch == "\n" and source[i - 1] == "\r"}
    for offset in range(len(source) + 1):
        if offset in line_breaks:
            continue  # between \r and \n is not a place a client can name
        if 0 < offset < len(source) and "\ud800" <= source[offset - 1] <= "\udfff":
            continue
        assert snap.offset_of(snap.position_of(offset)) == offset, offset


def test_options_default_and_accept_good_values():
    options, warnings = parse_options({"diffusionInfill": {"model": "/models/x", "allowDownload": True,
                                                           "device": "cuda:1", "dtype": "bfloat16", "threads": 2,
                                                           "maxNewTokens": 32, "steps": 8, "seed": 7}})
    assert warnings == []
    config = options.engine_config()
    assert (config.model, config.allow_download, config.device, config.dtype) == ("/models/x", True, "cuda:1",
                                                                                  "bfloat16")
    assert (config.threads, config.max_steps, config.seed, options.maxNewTokens) == (2, 8, 7, 32)
    assert parse_options(None) == (ServerOptions(), [])


def test_bad_option_values_warn_and_fall_back_to_defaults():
    base = ServerOptions(steps=10)
    options, warnings = parse_options({"steps": 0, "device": "tpu", "maxNewTokens": True, "model": 5,
                                       "threads": "many", "frobnicate": 1}, base=base)
    assert options == ServerOptions()    # every bad value took the field's default, not the old value
    assert len(warnings) == 6
    assert any("frobnicate" in w for w in warnings) and any("device = 'tpu'" in w for w in warnings)
    kept, warnings = parse_options(["not", "an", "object"], base=base)
    assert kept == base and "must be an object" in warnings[0]


def test_an_empty_model_setting_means_the_embedded_model():
    options, warnings = parse_options({"model": ""}, base=ServerOptions(model="/old"))
    assert options.model is None and warnings == []


def test_options_not_mentioned_are_kept():
    options, _ = parse_options({"seed": 3}, base=ServerOptions(steps=10))
    assert (options.seed, options.steps) == (3, 10)


RANGE = {"start": {"line": 1, "character": 2}, "end": {"line": 3, "character": 0}}


@pytest.mark.parametrize("args", [
    ({"uri": "file:///a.py", "range": RANGE, "instruction": "shorter"},),
    ("file:///a.py", RANGE, "shorter"),
    (["file:///a.py", RANGE, "shorter"],),
])
def test_command_arguments_as_object_or_positional(args):
    uri, rng, instruction = command_arguments(args)
    assert uri == "file:///a.py" and instruction == "shorter"
    assert rng == types.Range(start=at(1, 2), end=at(3, 0))


@pytest.mark.parametrize("args", [(), ("file:///a.py",), ({"uri": 1, "range": RANGE},),
                                  ({"uri": "file:///a.py", "range": {"start": {}}},),
                                  ("file:///a.py", RANGE, 42), (1, 2, 3, 4)])
def test_bad_command_arguments_raise_invalid_params(args):
    with pytest.raises(JsonRpcInvalidParams):
        command_arguments(args)
