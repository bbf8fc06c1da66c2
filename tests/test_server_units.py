"""The server's pure pieces, without a process or a model: positions, options, command arguments."""
from __future__ import annotations

import asyncio
import collections
import contextlib
from dataclasses import replace

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


def bare_server(silent: bool = False, folder: str | None = None):
    """A server object of its own, in this process, with a workspace as after initialize and no model loaded;
    `silent`: what it would send to a client goes nowhere; `folder`: the workspace's one folder (a URI)."""
    from pygls.workspace import Workspace

    from lsp_server.server import InfillServer

    ls = InfillServer()
    ls.protocol._workspace = Workspace(folder, workspace_folders=[types.WorkspaceFolder(uri=folder, name="folder")]
                                       if folder else None)
    if silent:
        ls.protocol._send_data = lambda data: None
    return ls


@pytest.mark.parametrize("source, position, offset", [
    ("ab\ncd\n", at(0, 0), 0),
    ("ab\ncd\n", at(1, 2), 5),          # end of a line
    ("ab\ncd\n", at(2, 0), 6),          # the empty line after the final newline
    ("ab\ncd\n", at(3, 0), None),       # past the last line
    ("ab\ncd\n", at(0, 3), 2),          # past the end of a line: its end (LSP 3.17, Position)
    ("ab\r\ncd", at(0, 10_000), 2),     # ... before the line break
    ("ab\r\ncd", at(1, 1), 5),          # CRLF is one line break
    ("ab\rcd", at(1, 1), 4),            # so is a lone CR
    ("a\x0cb\n", at(0, 2), 2),          # a form feed is not a line break for LSP
    ("a\u2028b\x85c\nd", at(1, 0), 6),  # nor are U+2028 and U+0085
    ("ab\rcd\r\r\ne", at(3, 0), 8),    # \r then \r\n: two line breaks
    ("s = '😋' + x", at(0, 8), 7),      # UTF-16: the emoji is two units
    ("s = '😋' + x", at(0, 6), None),   # between its two halves
    ("", at(0, 0), 0),
    ("", at(0, 1), 0),
    ("", at(1, 0), None),
])
def test_offsets_from_utf16_positions(source, position, offset):
    assert Snapshot("file:///x.py", source).offset_of(position) == offset


def test_a_ranges_end_on_the_line_after_the_last_is_the_documents_end():
    """A line-wise selection of a last line without a line break ends at the start of the line after it; any other
    place past the end is still no position in the document."""
    snap = Snapshot("file:///x.py", "a\nbc")
    assert snap.end_offset_of(at(2, 0)) == 4 and snap.end_offset_of(at(1, 1)) == 3
    assert snap.end_offset_of(at(2, 3)) is None and snap.end_offset_of(at(3, 0)) is None
    assert Snapshot("file:///x.py", "x = 1\n").end_offset_of(at(40, 0)) is None


def test_a_column_past_the_line_end_is_refused_when_not_clamped():
    """The CLI's columns are typed by a person: past the end is a mistake there, not the LSP fallback."""
    snap = Snapshot("file:///x.py", "ab\ncd\n")
    assert snap.offset_of(at(0, 3), clamp_to_line_end=False) is None
    assert snap.offset_of(at(0, 2), clamp_to_line_end=False) == 2
    astral = Snapshot("file:///x.py", "s😋")
    assert astral.offset_of(at(0, 2)) is None and astral.offset_of(at(0, 4)) == 2   # inside the emoji; past it


def test_other_encodings_count_their_own_units():
    source = "é😋x\n"
    assert Snapshot("file:///x.py", source, codec=UTF32).offset_of(at(0, 2)) == 2
    assert Snapshot("file:///x.py", source, codec=UTF8).offset_of(at(0, 6)) == 2   # é = 2 bytes, 😋 = 4
    assert Snapshot("file:///x.py", source, codec=UTF8).offset_of(at(0, 1)) is None


@pytest.mark.parametrize("source, offset, position", [
    ("ab\ncd", 3, at(1, 0)),
    ("ab\r\ncd", 2, at(0, 2)),
    ("ab\r\ncd", 3, at(0, 2)),          # between \r and \n: still the end of the line they end
    ("ab\r\ncd", 4, at(1, 0)),
    ("ab\rcd\r\r\ne", 3, at(1, 0)),    # a lone CR ends a line
    ("ab\rcd\r\r\ne", 6, at(2, 0)),    # \r then \r\n: two line breaks
    ("ab\rcd\r\r\ne", 8, at(3, 0)),
    ("a\x0cb\nc", 2, at(0, 2)),         # a form feed is not a line break for LSP
    ("a\u2028b\x85c\nd", 4, at(0, 4)),  # nor are U+2028 and U+0085
    ("a\u2028b\x85c\nd", 6, at(1, 0)),
    ("x\n😋😋y", 4, at(1, 4)),           # UTF-16: two units for each emoji
    ("\r\n\r\n", 4, at(2, 0)),
    ("ab", 99, at(0, 2)),                # past the end: the end
    ("ab", -1, at(0, 0)),
])
def test_positions_from_offsets(source, offset, position):
    assert Snapshot("file:///x.py", source).position_of(offset) == position


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r", "\r\n\r"])
def test_positions_deep_in_a_document_of_many_lines(newline):
    source = newline.join(f"line {i}" for i in range(20_000))
    snap = Snapshot("file:///x.py", source)
    lines = 20_000 + (19_999 if newline == "\r\n\r" else 0)   # \r\n then \r: two line breaks
    every_line = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for line in (0, 1, 2, lines // 2, lines // 2 + 1, lines - 1):
        column = min(5, len(every_line[line]))   # an empty line's end, past it
        offset = snap.offset_of(at(line, 5))
        assert source[offset - column:].startswith(every_line[line]), line
        assert snap.position_of(offset) == at(line, column)
    assert snap.offset_of(at(lines, 0)) is None


def test_offsets_and_positions_round_trip():
    source = "def f():\r\n    return '😋'\n\tx = 1\ry\x0cz\u2028w\r\r\n\n"
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
                                                           "maxNewTokens": 32, "steps": 8, "seed": 7,
                                                           "quantize": "int4"}})
    assert warnings == []
    config = options.engine_config()
    assert (config.model, config.allow_download, config.device, config.dtype) == ("/models/x", True, "cuda:1",
                                                                                  "bfloat16")
    assert config.quantize == "int4" and replace(options, quantize="none").model_key() != options.model_key()
    assert (config.threads, config.max_steps, config.seed, options.maxNewTokens) == (2, 8, 7, 32)
    assert parse_options(None) == (ServerOptions(), [])


def test_bad_option_values_warn_and_fall_back_to_defaults():
    base = ServerOptions(steps=10)
    options, warnings = parse_options({"steps": 0, "device": "tpu", "maxNewTokens": True, "model": 5,
                                       "threads": "many", "relatedFiles": "sometimes", "frobnicate": 1,
                                       "quantize": "int3"}, base=base)
    assert options == ServerOptions()    # every bad value took the field's default, not the old value
    assert len(warnings) == 8 and any("quantize = 'int3'" in w for w in warnings) and any("relatedFiles = 'sometimes'" in w for w in warnings)
    assert any("frobnicate" in w for w in warnings) and any("device = 'tpu'" in w for w in warnings)
    kept, warnings = parse_options(["not", "an", "object"], base=base)
    assert kept == base and "must be an object" in warnings[0]


def test_a_whole_number_sent_as_a_float_is_taken_and_a_bad_value_names_the_default_in_words():
    """Lua and some JSON writers send 8 as 8.0: it was refused as no whole number, while the commands' positions
    took 11.0. A bad value whose default is unset said `using None`."""
    options, warnings = parse_options({"maxNewTokens": 8.0, "seed": 3.0})
    assert (options.maxNewTokens, options.seed, warnings) == (8, 3, [])
    assert isinstance(options.maxNewTokens, int)
    options, warnings = parse_options({"maxNewTokens": 8.5, "steps": "x"})
    assert options.maxNewTokens == ServerOptions().maxNewTokens and len(warnings) == 2
    assert warnings[1].endswith("using the default") and "None" not in warnings[1]


@pytest.mark.parametrize("device", ["cuda:\u0663", "cuda:99999999999999999999", "cuda:", "cuda:-1"])
def test_a_device_torch_would_refuse_is_warned_about_and_defaulted(device):
    """An Arabic-Indic digit or an index past torch's integer passed the check: no warning, and the model never
    loaded (every request answered that the device is unknown)."""
    options, warnings = parse_options({"device": device})
    assert options.device == ServerOptions().device and len(warnings) == 1 and "device" in warnings[0]


def test_null_puts_an_option_back_to_its_default_without_a_warning():
    base, _ = parse_options({"maxNewTokens": 12, "seed": 7, "speculate": False})
    options, warnings = parse_options({"maxNewTokens": None, "seed": None}, base=base)
    assert (options.maxNewTokens, options.seed, options.speculate) == (ServerOptions().maxNewTokens, 0, False)
    assert warnings == []


def test_null_and_bad_values_go_back_to_the_command_lines_options_not_the_built_in_ones():
    started_with = ServerOptions(seed=5, steps=6, model="/models/from-the-command-line")
    base = replace(started_with, seed=9, steps=12, model="/models/from-the-editor")
    options, warnings = parse_options({"seed": None, "steps": 0, "model": None}, base=base, defaults=started_with)
    assert (options.seed, options.steps, options.model) == (5, 6, "/models/from-the-command-line")
    assert len(warnings) == 1 and "using 6" in warnings[0]


def test_an_empty_model_setting_means_the_embedded_model():
    options, warnings = parse_options({"model": ""}, base=ServerOptions(model="/old"))
    assert options.model is None and warnings == []


def test_spaces_pasted_around_a_model_path_are_not_part_of_it():
    # "model folder not found: /path/model " (with its trailing space) was all the user saw
    options, warnings = parse_options({"model": " /models/mine \n"})
    assert options.model == "/models/mine" and warnings == []


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
    uri, rng, instruction, _, _ = command_arguments(args)
    assert uri == "file:///a.py" and instruction == "shorter"
    assert rng == types.Range(start=at(1, 2), end=at(3, 0))


@pytest.mark.parametrize("args", [({"uri": "file:///a.py", "range": RANGE, "options": {"tabSize": 2}},),
                                  ([{"uri": "file:///a.py", "range": RANGE, "options": {"tabSize": 2}}],)])
def test_command_formatting_options_are_read_however_wrapped(args):
    """Before, a client wrapping the object in one more list had its formatting options dropped silently."""
    assert command_arguments(args)[3] == {"tabSize": 2}


@pytest.mark.parametrize("args", [(), ("file:///a.py",), ({"uri": 1, "range": RANGE},),
                                  ({"uri": "file:///a.py", "range": {"start": {}}},),
                                  ("file:///a.py", RANGE, 42), (1, 2, 3, 4),
                                  ({"uri": "file:///a.py", "range": {"start": {"line": True, "character": 0},
                                                                     "end": {"line": 0, "character": 1}}},)])
def test_bad_command_arguments_raise_invalid_params(args):
    with pytest.raises(JsonRpcInvalidParams):
        command_arguments(args)


@pytest.mark.parametrize("value", ["11", 11.5, None, [1]])
def test_a_range_number_that_is_no_whole_number_is_said_to_be_one(value):
    """lsprotocol said "should be in range [0:2147483647], but was 11" for the string "11": the user was told a
    range was wrong, not a type."""
    raw = {"start": {"line": 0, "character": value}, "end": {"line": 1, "character": 0}}
    with pytest.raises(JsonRpcInvalidParams, match="character must be a whole number"):
        command_arguments(({"uri": "file:///a.py", "range": raw},))


def test_a_whole_float_in_a_range_is_taken_as_its_number():
    raw = {"start": {"line": 1.0, "character": 2}, "end": {"line": 3, "character": 0.0}}
    assert command_arguments(("file:///a.py", raw))[1] == types.Range(start=at(1, 2), end=at(3, 0))
    raw["end"]["line"] = 1e300
    with pytest.raises(JsonRpcInvalidParams) as refused:
        command_arguments(("file:///a.py", raw))
    assert "got 1e+300" in str(refused.value) and len(str(refused.value)) < 200


# ---- typing experience: debounce, cache, typed-through, job queue, ids ------------------------------------------

import threading  # noqa: E402
import time  # noqa: E402

from lsp_server.debounce import MAX_QUIET_S, PAUSE_S, TypingRhythm, debounce_delay  # noqa: E402
from lsp_server.jobs import SUPERSEDED, JobQueue  # noqa: E402
from lsp_server.status import (COUNTERS, Counters, LastAnswer, SuggestionIds, status_object,  # noqa: E402
                               suggestion_id_of)
from lsp_server.suggestions import ResultCache, ShownSuggestion, context_key, reach_for  # noqa: E402
from infill.plan import make_plan  # noqa: E402


def rhythm_of(*times: float) -> TypingRhythm:
    rhythm = TypingRhythm()
    for t in times:
        rhythm.keystroke(t)
    return rhythm


def test_no_debounce_on_invoke_without_typing_or_after_a_pause():
    typing = rhythm_of(0.0, 0.1, 0.2, 0.3)
    assert debounce_delay(typing, 0.31, None, invoked=True) == 0.0
    assert debounce_delay(None, 0.31, None, invoked=False) == 0.0
    assert debounce_delay(TypingRhythm(), 5.0, None, invoked=False) == 0.0
    assert debounce_delay(typing, 0.3 + PAUSE_S, None, invoked=False) == 0.0


def test_debounce_follows_the_typing_rhythm_from_the_last_key():
    steady = rhythm_of(0.0, 0.1, 0.2, 0.3, 0.4)          # 10 keys/s
    assert debounce_delay(steady, 0.4, None, False) == pytest.approx(0.15)
    assert debounce_delay(steady, 0.5, None, False) == pytest.approx(0.05)   # time since the last key counts
    slow = rhythm_of(0.0, 0.2, 0.4, 0.6, 0.8)            # 5 keys/s waits longer, up to the cap
    assert debounce_delay(slow, 0.8, None, False) == pytest.approx(min(0.3, MAX_QUIET_S))
    dawdler = rhythm_of(0.0, 0.9, 1.8, 2.7)
    assert debounce_delay(dawdler, 2.7, None, False) == MAX_QUIET_S


def test_a_pause_is_not_a_typing_interval():
    rhythm = rhythm_of(0.0, 0.1, 0.2, 0.3, 10.0, 10.1)
    assert list(rhythm.intervals) == pytest.approx([0.1, 0.1, 0.1, 0.1])


def test_debounce_follows_the_model_latency():
    steady = rhythm_of(0.0, 0.1, 0.2, 0.3, 0.4)
    assert debounce_delay(steady, 0.4, 0.03, False) == 0.0                    # faster than the typist
    assert debounce_delay(steady, 0.4, 0.08, False) == pytest.approx(0.08)   # never wait longer than the model
    assert debounce_delay(steady, 0.4, 2.0, False) == pytest.approx(0.15)    # a slow model: the rhythm decides


OPTIONS = ("model", 48)


def test_context_key_covers_text_around_the_cursor_not_its_offset():
    far = "x = 1\n" * 2000
    assert context_key(far + "a = ", 6 * 2000 + 4, 6 * 2000 + 4, "python", "inline", OPTIONS) == \
        context_key("y = 22\n" + far + "a = ", 6 * 2001 + 5, 6 * 2001 + 5, "python", "inline", OPTIONS)
    base = context_key("a = \nb", 4, 4, "python", "inline", OPTIONS)
    assert base != context_key("a = \nc", 4, 4, "python", "inline", OPTIONS)     # the suffix counts
    assert base != context_key("a = \nb", 4, 4, "python", "inline", ("other", 48))
    assert base != context_key("a = \nb", 4, 4, "javascript", "inline", OPTIONS)


def test_context_key_reaches_as_far_as_the_models_prompt():
    """A 4,096-token prompt reads a renamed function 6,000 characters up: the key must change with it (before,
    it covered 4,000 characters whatever the model read). Beyond the prompt's reach an edit still hits."""
    line = "def helper_function_number(value):\n"
    above = line * 170 + "total = "                            # 6,128 characters before the cursor
    cursor = len(above)
    reach = reach_for(4096)
    renamed = "def renamed_function_number(value):\n" + above[len(line):]
    assert context_key(above, cursor, cursor, "python", "inline", OPTIONS, reach) != \
        context_key(renamed, len(renamed), len(renamed), "python", "inline", OPTIONS, reach)
    small = reach_for(192)                                     # the embedded model's prompt
    assert context_key(above, cursor, cursor, "python", "inline", OPTIONS, small) == \
        context_key(renamed, len(renamed), len(renamed), "python", "inline", OPTIONS, small)
    key = context_key(above * 20, cursor * 20, cursor * 20, "python", "inline", OPTIONS, reach)
    assert isinstance(key[0], bytes) and len(key[0]) == 20     # a long window is held as a digest


def test_cache_is_lru_and_an_invoke_needs_an_entry_with_several_candidates():
    cache = ResultCache(capacity=2)
    cache.put(("a",), ["1"], several=False)
    cache.put(("b",), ["2", "2b"], several=True)
    assert cache.get(("a",)).texts == ("1",)         # touches a: b is now the oldest
    cache.put(("c",), ["3"], several=False)
    assert cache.get(("b",)) is None and len(cache) == 2
    assert cache.get(("a",), several=True) is None    # made for an automatic trigger: one candidate only
    cache.put(("a",), ["1", "1b"], several=True)
    assert cache.get(("a",), several=True).texts == ("1", "1b")
    cache.put(("a",), ["other"], several=False)       # the richer entry stays
    assert cache.get(("a",)).texts == ("1", "1b")
    cache.put(("d",), [], several=False)
    assert cache.get(("d",)) is None


def test_typed_through_answers_the_rest_while_the_typing_matches():
    source = "def f():\n    return \n"
    cursor = source.index("return ") + len("return ")
    shown = ShownSuggestion.at(source, cursor, ["width * height", "width + 1"], several=True)

    def typed(text: str):
        rests = shown.remainders(source[:cursor] + text + source[cursor:], cursor + len(text))
        return rests and rests.texts

    assert typed("w") == ["idth * height", "idth + 1"]
    assert typed("width *") == [" height"]
    assert typed("x") is None                      # typed away from it
    assert typed("width * height") is None         # typed all of it: nothing left to offer
    assert shown.remainders(source, cursor) is None
    moved = source.replace("def f", "def g")       # an edit elsewhere: the suggestion is gone
    assert shown.remainders(moved[:cursor] + "w" + moved[cursor:], cursor + 1) is None


def test_typing_through_an_invokes_candidates_offers_every_one_that_fits_with_its_id():
    """Cycled to the second candidate and typed on: an automatic request (one candidate wanted) was answered with
    the first one's rest alone, and the editor showed that instead of the one the user was typing."""
    source = "def f():\n    return \n"
    cursor = source.index("return ") + len("return ")
    typed = source[:cursor] + "w" + source[cursor:]
    several = ShownSuggestion.at(source, cursor, ["width * height", "x", "width + 1"], several=True,
                                 ids=("s1", "s2", "s3"))
    rests = several.rests_to_offer(typed, cursor + 1, wanted=1)
    assert (rests.texts, rests.ids) == (["idth * height", "idth + 1"], ["s1", "s3"])
    one = ShownSuggestion.at(source, cursor, ["width * height", "width + 1"], several=False, ids=("s4", "s5"))
    rests = one.rests_to_offer(typed, cursor + 1, wanted=1)
    assert (rests.texts, rests.ids) == (["idth * height"], ["s4"])
    assert several.rests_to_offer(source[:cursor] + "q" + source[cursor:], cursor + 1, wanted=1) is None


def test_job_queue_keeps_one_waiting_job_per_key_and_cancels_the_running_one():
    queue = JobQueue("test-queue")
    started, release = threading.Event(), threading.Event()

    def blocking(token):
        started.set()
        release.wait(5)
        return "cancelled" if token() else "done"

    running = queue.submit("doc", blocking)
    assert started.wait(5)
    waiting = [queue.submit("doc", lambda token, n=n: n) for n in range(5)]
    other = queue.submit("other-doc", lambda token: "other")
    assert queue.waiting() == 2                     # one per key, however many were submitted
    release.set()
    assert running.future.result(5) == "cancelled"  # a newer job for its key stopped it
    assert [job.future.result(5) for job in waiting] == [SUPERSEDED] * 4 + [4]
    assert other.future.result(5) == "other"
    queue.close()


def test_a_waiting_job_whose_waiter_gave_up_leaves_the_queue_at_once():
    """$/cancelRequest cancels the request's future: the job no longer counts as waiting work, and the queue is
    idle (speculation may run) without waiting for the worker to reach and skip it."""
    queue = JobQueue("test-queue")
    started, release = threading.Event(), threading.Event()
    running = queue.submit("doc", lambda token: (started.set(), release.wait(5)) and "done")
    assert started.wait(5)
    given_up = queue.submit("other-doc", lambda token: "never read")
    assert queue.waiting() == 1
    given_up.future.cancel()
    assert queue.waiting() == 0
    release.set()
    assert running.future.result(5) == "done"
    deadline = time.monotonic() + 5
    while not queue.idle() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert queue.idle()
    queue.close()


def test_closing_without_waiting_returns_while_a_job_that_cannot_stop_still_runs():
    """The shutdown request is answered at once; a model load (which cannot stop half-way) is waited for at exit."""
    queue = JobQueue("test-queue")
    started, release = threading.Event(), threading.Event()
    running = queue.submit("load", lambda token: (started.set(), release.wait(10)) and "loaded")
    assert started.wait(5)
    queue.close(wait=False)
    assert not running.future.done()          # returned while the job runs on
    release.set()
    queue.close()                              # the second close waits for the worker
    assert running.future.done() and not queue._thread.is_alive()


def test_speculation_runs_only_when_idle_and_real_work_cancels_it():
    queue = JobQueue("test-queue")
    order, gate = [], threading.Event()
    first = queue.submit("doc", lambda token: gate.wait(5) and order.append("real"))
    speculative = queue.submit("spec", lambda token: order.append("spec") or "spec", speculative=True)
    second = queue.submit("doc2", lambda token: order.append("real2"))
    assert speculative.future.result(5) is SUPERSEDED   # a real job arrived while it waited
    gate.set()
    first.future.result(5), second.future.result(5)
    assert order == ["real", "real2"]

    spinning = threading.Event()

    def spin(token):
        spinning.set()
        deadline = time.monotonic() + 5
        while not token() and time.monotonic() < deadline:
            time.sleep(0.005)
        return "stopped" if token() else "ran out"

    speculative = queue.submit("spec", spin, speculative=True)
    assert spinning.wait(5)
    assert queue.submit("doc", lambda token: "real").future.result(5) == "real"
    assert speculative.future.result(5) == "stopped"
    assert queue.idle()
    queue.close()
    assert queue.submit("doc", lambda token: "late").future.result(5) is SUPERSEDED


def test_a_failing_job_reports_its_error_and_the_worker_lives_on():
    queue = JobQueue("test-queue")
    with pytest.raises(ZeroDivisionError):
        queue.submit("doc", lambda token: 1 / 0).future.result(5)
    assert queue.submit("doc", lambda token: "fine").future.result(5) == "fine"
    queue.close()


def test_status_object_has_exactly_the_contract_fields():
    counters = Counters(requests=3, answered=2)
    status = status_object("ready", "/models/x", "cpu", "model ready", LastAnswer(12.345, "model", 12.345), counters)
    assert set(status) == {"state", "model", "device", "message", "lastLatencyMs", "lastModelLatencyMs",
                           "lastAnswerSource", "counters"}
    assert set(status["counters"]) == set(COUNTERS) == {
        "requests", "cancelled", "answered", "empty", "typedThrough", "cacheHits", "speculated", "shown",
        "displayed", "accepted", "rejected"}
    assert status["counters"]["requests"] == 3 and status["lastLatencyMs"] == status["lastModelLatencyMs"] == 12.3
    assert all(isinstance(v, int) for v in status["counters"].values())
    fresh = status_object("loading", None, None, "loading the model", LastAnswer(), counters)
    assert (fresh["lastLatencyMs"], fresh["lastModelLatencyMs"], fresh["lastAnswerSource"]) == (None, None, None)


def test_an_answer_without_the_model_keeps_the_model_latency():
    last = LastAnswer()
    last.record("model", 840.0)
    last.record("cache", 2.0)
    assert (last.latency_ms, last.source, last.model_latency_ms) == (2.0, "cache", 840.0)
    last.record("typed-through", 1.0)
    last.record("speculation", 300.0)   # adopted from a run started ahead of the request: not the model's time
    assert (last.latency_ms, last.source, last.model_latency_ms) == (300.0, "speculation", 840.0)
    last.record("model", 700.0)
    assert (last.latency_ms, last.source, last.model_latency_ms) == (700.0, "model", 700.0)


def test_suggestion_ids_settle_once_and_only_when_offered():
    ids = SuggestionIds(capacity=2)
    first, second, third = ids.new(), ids.new(), ids.new()
    assert ids.settle(second) and not ids.settle(second)   # counted once
    assert not ids.settle(first)                           # forgotten: over capacity
    assert not ids.settle("never-offered") and not ids.settle(None) and ids.settle(third)
    assert suggestion_id_of(({"id": "s1"},)) == "s1" == suggestion_id_of(("s1",)) == suggestion_id_of({"id": "s1"})
    assert suggestion_id_of(()) is None and suggestion_id_of(({"id": 5},)) is None
    # pygls hands a notification's object over as a namedtuple: one of one field is not that field's value
    notification = collections.namedtuple("Object", ["uri"])
    assert suggestion_id_of(notification("s1")) is None
    assert suggestion_id_of(collections.namedtuple("Object", ["id"])("s1")) == "s1"


def test_suggestion_ids_count_a_display_once_and_still_settle_after_it():
    ids = SuggestionIds()
    shown = ids.new()
    assert ids.display(shown) and not ids.display(shown)          # shown again after cycling back: once
    assert not ids.display("never-offered") and not ids.display(None)
    assert ids.settle(shown) and not ids.display(shown)           # accepted: closed for every signal


def test_reuse_prefix_speculate_and_read_ahead_options():
    assert ServerOptions().engine_config().reuse_prefix is True and ServerOptions().readAhead is True
    options, warnings = parse_options({"reusePrefix": False, "speculate": False})
    assert warnings == [] and options.engine_config().reuse_prefix is False and options.speculate is False
    # The loaded engine takes it between runs (InfillEngine.retune): no reload, but a new key for cached answers.
    assert options.model_key() == ServerOptions().model_key()
    assert options.sampling_key() != ServerOptions().sampling_key()
    options, warnings = parse_options({"readAhead": False})
    assert warnings == [] and options.readAhead is False and options.speculate is True
    assert options.model_key() == ServerOptions().model_key()   # the server's choice: the engine is kept
    options, warnings = parse_options({"readAhead": 1})
    assert options.readAhead is True and "readAhead" in warnings[0]
    options, warnings = parse_options({"reusePrefix": "no"})
    assert options.reusePrefix is True and "reusePrefix" in warnings[0]


def test_candidate_texts_are_the_choice_then_the_other_ranked_choices_without_repeats():
    from infill import InfillResult

    from lsp_server.model_host import candidate_texts

    result = InfillResult("a + b", 3, 3, details={"choices": [
        {"index": 0, "text": "a + b"}, {"index": 2, "text": "a - b"}, {"index": 3, "text": ""}, {"index": 4}]})
    assert candidate_texts(result) == ["a + b", "a - b"]
    assert candidate_texts(InfillResult("", 0, 0, details={"choices": [{"text": "x"}]})) == []


def test_suggestions_that_replace_auto_closed_brackets_keep_their_range_relative_to_the_cursor():
    source = "print()\n"
    cursor = source.index(")")
    shown = ShownSuggestion.at(source, cursor, ["total, end='')"], several=False, replace=1)
    typed = source[:cursor] + "tot" + source[cursor:]
    rests = shown.remainders(typed, cursor + 3)
    assert rests.texts == ["al, end='')"] and rests.replace == 1
    cache = ResultCache()
    cache.put(("k",), ["x)"], several=False, replace=1)
    assert cache.get(("k",)).replace == 1
    # Typed up to the auto-closed tail: what is left only writes the `)` it replaces, a change of nothing.
    assert shown.remainders(source[:cursor] + "total, end=''" + source[cursor:], cursor + 13) is None


def test_typing_through_keeps_going_past_closers_the_editor_auto_typed():
    source = "x = \n"
    cursor = len("x = ")
    shown = ShownSuggestion.at(source, cursor, ["max(a, len(b))", "max(a)"], several=True)

    def typed(text: str, auto: str):
        rests = shown.remainders(source[:cursor] + text + auto + source[cursor:], cursor + len(text))
        return rests and (rests.texts, rests.replace)

    # `(` typed from the suggestion and `)` auto-typed by the editor: the rests replace the `)`.
    assert typed("max(", ")") == (["a, len(b))", "a)"], 1)
    assert typed("max(a, len(", "))") == (["b))"], 2)
    assert typed("max(a", ")") == ([", len(b))"], 1)   # "max(a)" is left with a `)` that changes nothing
    # Text after the cursor that the typing did not open is an edit: the suggestion is gone.
    assert typed("max(", "]") is None
    assert typed("max", ")") is None
    assert typed("max(", "x)") is None
    quoted = ShownSuggestion.at(source, cursor, ['f("a")'], several=False)
    rests = quoted.remainders(source[:cursor] + 'f("' + '")' + source[cursor:], cursor + 3)
    assert (rests.texts, rests.replace) == (['a")'], 2)


def test_typing_over_a_closer_the_suggestion_replaces_keeps_the_rest():
    """`if (|)` with `x > 0) {` over the editor's `)`: VS Code types `)` over its own by moving the cursor, with
    no change to the text; the ` {` left was thrown away and the model ran again."""
    source = "  if ()\n"
    cursor = source.index(")")
    shown = ShownSuggestion.at(source, cursor, ["x > 0) {"], several=False, replace=1)
    typed = source[:cursor] + "x > 0" + source[cursor:]
    rests = shown.remainders(typed, cursor + 5)
    assert (rests.texts, rests.replace) == ([") {"], 1)
    rests = shown.remainders(typed, cursor + 6)   # over the `)`
    assert (rests.texts, rests.replace) == ([" {"], 0)
    assert shown.remainders(typed, cursor + 7) is None               # past the text after the cursor
    plain = ShownSuggestion.at(source, cursor, ["x > 0) {"], several=False)   # the `)` was not replaced
    assert plain.remainders(typed, cursor + 6) is None


def test_enter_between_braces_keeps_a_multi_line_suggestion():
    """`{|}` with a body and `}` over the editor's `}`: Enter puts a line break and indentation before the cursor
    and a line break before the `}`, which was taken for an edit: the rest was lost and the model ran again."""
    source = "function f(x) {}\n"
    cursor = source.index("}")
    shown = ShownSuggestion.at(source, cursor, ["\n  return x + 1;\n}"], several=False, replace=1)
    entered = source[:cursor] + "\n  " + "\n" + source[cursor:]
    rests = shown.remainders(entered, cursor + 3)
    assert (rests.texts, rests.replace) == (["return x + 1;\n}"], 2)
    finished = entered[:cursor + 3] + rests.texts[0] + entered[cursor + 3 + rests.replace:]
    assert finished == source[:cursor] + "\n  return x + 1;\n}" + source[cursor + 1:]
    # Text other than closers and blank space after the cursor is still an edit.
    assert shown.remainders(source[:cursor] + "\n  " + "\nx" + source[cursor:], cursor + 3) is None


def test_the_rest_of_a_completion_list_item_is_not_shown_once_the_list_closed_without_it():
    """An answer made with `abacus` selected in the list starts at the word: after Escape and Backspace it still
    matched the word typed, and the rest of the item the user turned down came back as ghost text."""
    source = "x = ab\n"
    start, cursor = source.index("ab"), source.index("\n")
    shown = ShownSuggestion(source[:start], source[cursor:], ("abacus(1, 2)",), False, min_typed=len("abacus"))
    assert shown.remainders("x = a\n", start + 1) is None
    assert shown.remainders("x = abac\n", start + 4) is None
    accepted = shown.remainders("x = abacus\n", start + 6)   # the item accepted: the rest follows it
    assert accepted.texts == ["(1, 2)"]


def test_a_rest_that_would_delete_an_auto_typed_closer_is_not_offered():
    source = "x = \n"
    cursor = len("x = ")
    shown = ShownSuggestion.at(source, cursor, ["f(a,\n"], several=False)   # closes on a later line, not here
    assert shown.remainders(source[:cursor] + "f()" + source[cursor:], cursor + 2) is None


def test_the_server_answers_typed_through_past_an_auto_closed_bracket_without_the_model():

    from lsp_server.server import TYPED_THROUGH, complete_inline, document_key

    ls = bare_server()
    uri = "file:///tmp/units/auto-closed.txt"
    shown_at = "total = \n"
    ls.suggestions[document_key(uri)] = ShownSuggestion.at(shown_at, len("total = "), ["sum(values)"],
                                                           several=False)
    typed = "total = sum()\n"    # `sum(` typed, `)` auto-typed by the editor
    ls.workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="plaintext", version=3,
                                                          text=typed))
    how, items = asyncio.run(complete_inline(ls, types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=at(0, len("total = sum(")),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))))
    assert how == TYPED_THROUGH
    (item,) = items
    assert item.insert_text == "values)" and item.range == types.Range(at(0, 12), at(0, 13))


@pytest.mark.parametrize("shown_texts, expected", [
    (["{\n  return a + b;\n}"], ["return a + b;"]),
    (["{\n  return a + b;\n}", "{\n  return a;\n};"], ["return a + b;"]),   # one that cannot go on one line: left out
])
def test_typed_through_past_enter_between_braces_the_rest_stays_on_the_cursors_line(shown_texts, expected):
    """`{` (the editor adds `}`), then Enter between the braces: the rest replaced the `\n}` below, a range over
    two lines, and VS Code shows no ghost text for that; the rest now goes in at the cursor, before the `\n}`."""
    from lsp_server.server import TYPED_THROUGH, complete_inline, document_key

    ls = bare_server()
    uri = "file:///tmp/units/enter.js"
    before = "function add(a, b) "
    ls.suggestions[document_key(uri)] = ShownSuggestion.at(before + "\n", len(before), shown_texts, several=True)
    ls.workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="javascript", version=3,
                                                          text=before + "{\n  \n}\n"))
    how, items = asyncio.run(complete_inline(ls, types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=at(1, 2),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))))
    assert how == TYPED_THROUGH
    assert [item.insert_text for item in items] == expected
    assert all(item.range == types.Range(at(1, 2), at(1, 2)) for item in items)


def test_a_rest_that_cannot_stay_on_the_cursors_line_is_no_typed_through_answer():
    from lsp_server.suggestions import on_the_cursors_line
    source = "f() {\n  \n}\n"
    rests = ShownSuggestion.at("f() \n", 4, ["{\n  return a;\n};"], several=False).remainders(source, 8)
    assert rests.texts == ["return a;\n};"] and source[8:8 + rests.replace] == "\n}"
    assert on_the_cursors_line(rests, "\n}") is None
    assert on_the_cursors_line(rests, "}") is rests   # on one line: as it was
    # so the edit is no typed-through answer, and the prompt is read ahead for the model's answer to come
    from lsp_server.server import typed_through_shows
    assert not typed_through_shows(ShownSuggestion.at("f() \n", 4, ["{\n  return a;\n};"], several=False), source, 8)
    assert typed_through_shows(ShownSuggestion.at("f() \n", 4, ["{\n  return a;\n}"], several=False), source, 8)


def test_an_answer_asked_for_in_a_comment_is_not_shown_again_while_typing():
    """Typing inside a comment or string gets no suggestion; one the user asked for there is not replayed."""
    cache = ResultCache()
    cache.put(("k",), ["the rest of the comment"], several=True, asked_only=True)
    assert cache.get(("k",)) is None
    assert cache.get(("k",), several=True).texts == ("the rest of the comment",)


def test_the_plan_marks_an_answer_that_only_an_explicit_request_gets():
    text = "def f():\n    x = 1  # the \n"
    cursor = text.index("# the ") + len("# the ")
    plan = make_plan(text, "inline", cursor, cursor, "python", None, 32, 512, len, invoked=True)
    assert plan.decision.shape == "single" and plan.details["asked_only"] is True
    cursor = text.index("x = 1") + len("x = ")
    assert make_plan(text, "inline", cursor, cursor, "python", None, 32, 512, len, invoked=True
                     ).details["asked_only"] is False


def test_inline_budget_option():
    assert ServerOptions().inlineBudgetMs == 150
    options, warnings = parse_options({"inlineBudgetMs": 0})
    assert warnings == [] and options.inlineBudgetMs == 0
    options, warnings = parse_options({"inlineBudgetMs": -5})
    assert options.inlineBudgetMs == 150 and "inlineBudgetMs" in warnings[0]
    options, warnings = parse_options({"inlineBudgetMs": 2.5})
    assert options.inlineBudgetMs == 150 and "milliseconds" in warnings[0]
    # The budget plans steps per request: the loaded engine is kept when it changes.
    assert parse_options({"inlineBudgetMs": 40})[0].model_key() == ServerOptions().model_key()


def test_context_tokens_option():
    assert ServerOptions().contextTokens is None and ServerOptions().engine_config().max_prompt_tokens is None
    options, warnings = parse_options({"contextTokens": 1024})
    assert warnings == [] and options.engine_config().max_prompt_tokens == 1024
    for bad in (8, 10**9, "1024", 512.5, True):   # (512.0 is 512)
        options, warnings = parse_options({"contextTokens": bad})
        assert options.contextTokens is None and "contextTokens" in warnings[0] and "64" in warnings[0]
    # The engine sizes its caches from it, so a change loads a new one.
    assert parse_options({"contextTokens": 512})[0].model_key() != ServerOptions().model_key()


def test_a_completion_item_carries_the_inline_suggestion():
    from lsp_server.completion_items import as_completion_item, label_of
    cursor = types.Range(start=types.Position(3, 8), end=types.Position(3, 9))   # replaces an auto-closed `)`
    accept = types.Command(title="accepted", command="infill.accepted", arguments=[{"id": "7"}])
    item = as_completion_item(types.InlineCompletionItem(insert_text="\n    total += x\n    count += 1)",
                                                         range=cursor, command=accept))
    assert item.label == "total += x" and item.text_edit.range == cursor and item.command == accept
    assert item.text_edit.new_text == "\n    total += x\n    count += 1)" == item.documentation.value
    assert item.insert_text_mode == types.InsertTextMode.AsIs
    assert as_completion_item(types.InlineCompletionItem(insert_text="x + 1)", range=cursor)).documentation is None
    assert label_of("y" * 80) == "y" * 59 + "…"
    for line_break in ("\r\n", "\r"):   # a suggestion has the document's line breaks
        lines = as_completion_item(types.InlineCompletionItem(
            insert_text=f"{line_break}total = 0{line_break}    count += 1", range=cursor))
        assert lines.label == "total = 0" and lines.documentation is not None


def test_a_completion_item_is_labelled_with_what_it_adds_not_the_users_text_it_keeps():
    """A fill after `def f(x):` that keeps the user's `  # type: ignore` (the range covers it, the text starts
    with it) was labelled `# type: ignore` in the menu: the user's own comment, not the suggestion."""
    from lsp_server.completion_items import as_completion_item
    kept = types.Range(start=types.Position(0, 9), end=types.Position(0, 25))
    item = as_completion_item(types.InlineCompletionItem(insert_text="  # type: ignore\n    return x * 2",
                                                         range=kept), "  # type: ignore")
    assert item.label == "return x * 2" and item.text_edit.new_text.startswith("  # type: ignore")
    same = as_completion_item(types.InlineCompletionItem(insert_text=")", range=kept), ")")
    assert same.label == ")"   # nothing new: the text itself
    # Only the whole kept text is left out, not any first characters the two share (a label from mid-word).
    assert as_completion_item(types.InlineCompletionItem(insert_text="count_all)", range=kept),
                              "count)").label == "count_all)"


def test_a_suggestion_typed_through_past_a_line_break_is_a_one_line_completion_item():
    """`{` (the editor adds `}`), then Enter between the braces: the rest of the suggestion replaces the `\n}` the
    editor put on the next line, a range over two lines, which a completion item may not have."""
    from lsp_server.completion_items import as_completion_item
    from lsp_server.positions import Snapshot
    from lsp_server.server import replaced_text
    from lsp_server.suggestions import ShownSuggestion

    before = "const f = () => "
    shown = ShownSuggestion.at(before + "\n", len(before), ["{\n  return 1;\n}"], several=False)
    source = before + "{\n  \n}\n"
    cursor = len(before + "{\n  ")
    rest = shown.remainders(source, cursor)
    snap = Snapshot("file:///a.js", source)
    edit_range = snap.range_of(cursor, cursor + rest.replace)
    assert edit_range.start.line != edit_range.end.line   # the rest's range (inline: on_the_cursors_line's)
    item = as_completion_item(types.InlineCompletionItem(insert_text=rest.texts[0], range=edit_range),
                              replaced_text(snap, edit_range))
    assert item.text_edit.range == types.Range(start=edit_range.start, end=edit_range.start)
    end = cursor + rest.replace
    assert source[:cursor] + item.text_edit.new_text + source[cursor:] == source[:cursor] + rest.texts[0] + source[end:]
    # A text that does not end as the replaced lines do cannot be put on one line: no item rather than a bad one.
    assert as_completion_item(types.InlineCompletionItem(insert_text="return 1;\n};", range=edit_range),
                              replaced_text(snap, edit_range)) is None


# ---- document changes and applyEdit answers (protocol.py, server.py) --------------------------------------------

from collections import namedtuple  # noqa: E402

from lsp_server.positions import clamped_offset  # noqa: E402
from lsp_server.protocol import apply_change  # noqa: E402
from lsp_server.server import read_apply_edit_answer  # noqa: E402

UTF16 = PositionCodec(types.PositionEncodingKind.Utf16)


def edit(l1: int, c1: int, l2: int, c2: int, text: str) -> types.TextDocumentContentChangePartial:
    return types.TextDocumentContentChangePartial(range=types.Range(start=at(l1, c1), end=at(l2, c2)), text=text)


@pytest.mark.parametrize("source, change, codec, result", [
    ("a\x0cb\nc\n", edit(1, 1, 1, 1, "Z"), UTF16, "a\x0cb\ncZ\n"),           # a form feed does not end a line
    ("a\u2028b\nc", edit(1, 0, 1, 1, "Z"), UTF16, "a\u2028b\nZ"),
    ("abc", edit(0, 1, 0, 99, "X"), UTF16, "aX"),                             # past the end of the last line
    ("ab\r\ncd", edit(0, 5, 0, 5, "X"), UTF16, "abX\r\ncd"),                  # past a CRLF line's end: before \r
    ("ab\rcd", edit(1, 0, 1, 0, "X"), UTF16, "ab\rXcd"),                      # a lone CR ends a line
    ("ab\n", edit(7, 0, 9, 0, "X"), UTF16, "ab\nX"),                          # lines past the end: the end
    ("a😋b", edit(0, 1, 0, 3, ""), UTF16, "ab"),                              # two UTF-16 units
    ("é😋b", edit(0, 2, 0, 6, ""), UTF8, "éb"),                               # four UTF-8 bytes
    ("abcd", edit(0, 3, 0, 1, "X"), UTF16, "aXd"),                            # a reversed range, same span
    # UTF-16 editors edit code units: VS Code's minimal edit for 😀 -> 😁 replaces the low half alone (the server
    # snapped the range to the emoji's start and kept a lone low half, its line a unit shorter than the editor's).
    ("s = '😀' abc", edit(0, 6, 0, 7, "\ude01"), UTF16, "s = '😁' abc"),
    ("x\n😀😀\ny", edit(1, 1, 1, 3, "Z"), UTF16, "x\n\ud83dZ\ude00\ny"),          # as the editor has it too
    ("x\n😀\ny", edit(1, 1, 0, 1, "\ud83d"), UTF16, "x😀\ny"),                   # reversed, across lines
    ("a😋b", edit(0, 2, 0, 2, ""), UTF16, "a😋b"),                            # nothing inserted: nothing lost
    ("x\n\ud83dZ\ude00", edit(1, 1, 1, 2, ""), UTF16, "x\n😀"),                 # halves meet: one character
    ("😀\ud83d", edit(1, 1, 2, 0, "\ude00a"), UTF16, "😀😀a"),                     # past the end, after a half
    ("old", types.TextDocumentContentChangeWholeDocument(text="new\r\n"), UTF16, "new\r\n"),
])
def test_document_changes_follow_the_lsp_rules(source, change, codec, result):
    assert apply_change(source, change, codec) == result


def test_a_pairs_halves_typed_in_two_changes_become_one_character():
    """Both halves then sat in the server's copy as two characters: every position after them on the line was
    refused as "inside a character", and the text as "not valid Unicode"."""
    half = apply_change("ab", edit(0, 1, 0, 1, "\ud83d"), UTF16)
    whole = apply_change(half, edit(0, 2, 0, 2, "\ude00"), UTF16)
    assert whole == "a😀b" and len(whole) == 3


def test_positions_on_a_long_line_with_astral_characters():
    line = "x😋é" * 50_000
    for codec, units_per_repeat in ((UTF16, 4), (UTF8, 7), (UTF32, 3)):
        snap = Snapshot("file:///x.js", line, codec=codec)
        assert snap.offset_of(at(0, units_per_repeat * 40_000)) == 3 * 40_000
        assert snap.position_of(3 * 40_000 + 1) == at(0, units_per_repeat * 40_000 + 1)
        past_the_end = at(0, units_per_repeat * len(line) // 3 + 1)
        assert snap.offset_of(past_the_end) == len(line)
        assert snap.offset_of(past_the_end, clamp_to_line_end=False) is None
    assert Snapshot("file:///x.js", line, codec=UTF16).offset_of(at(0, 2)) is None      # inside the emoji
    assert clamped_offset(line, at(0, 2), UTF16) == 1     # in an edit: the emoji's start


def test_apply_edit_answers_count_only_an_explicit_applied_true():
    answer = namedtuple("Object", ["applied", "failureReason"])
    assert read_apply_edit_answer({"applied": True}) == (True, None)
    assert read_apply_edit_answer(answer(True, None)) == (True, None)   # how pygls hands it over
    assert read_apply_edit_answer(answer(False, "read-only file")) == (False, "read-only file")
    assert read_apply_edit_answer({"applied": "yes"})[0] is False
    assert read_apply_edit_answer(None) == (False, "the editor answered workspace/applyEdit with None")


def test_an_invoke_cancelled_between_its_runs_is_cancelled_not_short(tiny_model_dir):
    """A keystroke landing after the first run's last step, while it is cleaned: before, the answer came back
    uncancelled with one text, and the server cached it as an explicit invoke's several candidates."""
    import asyncio

    from engine.types import EngineConfig
    from infill import InfillRequest
    from lsp_server.model_host import ModelHost

    host = ModelHost()
    try:
        info, error = host.load(EngineConfig(model=str(tiny_model_dir), threads=1)).result(120)
        assert error is None
        real_infill, runs = host._infill, []

        def infill_then_keystroke(request, cancel, seed=None, speculative=False):
            runs.append(seed)
            result = real_infill(request, cancel, seed=seed, speculative=speculative)
            cancel.cancel()
            return result

        host._infill = infill_then_keystroke
        request = InfillRequest(text="notes: the total is \n", mode="inline", start=20, end=20, invoked=True)
        # More candidates than one run's cleaned choices (at most 5), so extra runs would follow.
        generated = asyncio.run(host.complete(request, "doc", candidates=10))
        assert runs == [None] and generated.cancelled
    finally:
        host.close()


def test_a_fast_path_that_fails_during_a_request_is_told_once_and_read_by_the_host(tiny_model_dir):
    """A compile that failed on a shape first met in a request leaves the plain path serving (engine tests), with
    the context the plain path reads. Before, the host kept the load's description (compiled, 64 tokens: the
    server's reach and status read it), the window's note stayed beside the fallback's, and no one was told."""
    import torch._dynamo
    from torch._dynamo.backends.registry import lookup_backend

    from engine.types import EngineConfig
    from infill import InfillRequest
    from lsp_server.model_host import ModelHost

    loaded = {"done": False}

    def fails_after_the_load(graph, example_inputs):
        if not loaded["done"]:
            return lookup_backend("aot_eager")(graph, example_inputs)
        raise TypeError("list indices must be integers or slices, not NoneType")

    torch._dynamo.reset()
    torch._dynamo.register_backend(fails_after_the_load, name="host_fails_after_the_load_for_test")
    host = ModelHost()
    try:
        info, error = host.load(EngineConfig(model=str(tiny_model_dir), max_steps=4, threads=1, fast_path="compiled",
                                             compile_backend="host_fails_after_the_load_for_test",
                                             max_prompt_tokens=1000)).result(300)
        assert error is None and info["fast_path"] == "compiled" and info["max_prompt_tokens"] == 64
        assert any("sliding window" in note for note in info["notes"])
        loaded["done"] = True
        # one short row: a shape the warm-up did not compile
        host.run_blocking(InfillRequest(text="x = \n", mode="inline", start=4, end=4, max_new_tokens=4,
                                        invoked=True))
        assert host.info["fast_path"] == "off" and host.info["max_prompt_tokens"] == 1000
        assert not any("sliding window" in note for note in host.info["notes"])
        told = host.take_untold_notes()
        assert len(told) == 1 and "list indices" in told[0] and host.take_untold_notes() == []
    finally:
        host.close()
        torch._dynamo.reset()


def test_only_automatic_suggestions_feed_the_latency_the_debounce_reads(tiny_model_dir):
    """An explicit invoke runs every step without a budget: its time is not what typing waits for. Before, one
    Alt-\\ lifted the debounce for the typing that followed (a helper measured 0 -> 220 ms)."""
    import asyncio

    from engine.types import EngineConfig
    from infill import InfillRequest
    from lsp_server.model_host import ModelHost

    host = ModelHost()
    try:
        info, error = host.load(EngineConfig(model=str(tiny_model_dir), threads=1)).result(120)
        assert error is None
        text = "total = 0\nfor x in xs:\n    \n"
        asked = InfillRequest(text=text, mode="inline", start=26, end=26, invoked=True)
        typed = InfillRequest(text=text, mode="inline", start=26, end=26, budget_ms=150)
        assert asyncio.run(host.complete(asked, "doc")).model_runs and host.latency_s is None
        assert asyncio.run(host.complete(typed, "doc")).model_runs and host.latency_s is not None
        typing_latency = host.latency_s
        asyncio.run(host.complete(asked, "doc"))
        assert host.latency_s == typing_latency
    finally:
        host.close()


def test_an_explicit_request_samples_again_when_every_candidate_was_refused(tiny_model_dir):
    """One sample of a small model at one place is often refused (here: the random model's text would break the
    list). The user who asked gets more samples, with other seeds (REFUSED_RETRIES at most); typing gets one."""
    import asyncio

    from engine.types import EngineConfig
    from infill import InfillRequest
    from lsp_server.model_host import EXTRA_SEED_RUNS, ModelHost, refused_everything

    host = ModelHost()
    try:
        # Each run encodes afresh: a random model's near-ties follow a reused prompt's rounding.
        config = EngineConfig(model=str(tiny_model_dir), threads=1, seed=7, reuse_prefix=False)
        info, error = host.load(config).result(120)
        assert error is None
        real_infill, runs = host._infill, []

        def recorded(request, cancel, seed=None, speculative=False):
            result = real_infill(request, cancel, seed=seed, speculative=speculative)
            runs.append((seed, result.text, refused_everything(result)))
            return result

        host._infill = recorded
        text = "x = [1, 2, \n"
        typed = InfillRequest(text=text, mode="inline", start=11, end=11)
        asked = InfillRequest(text=text, mode="inline", start=11, end=11, invoked=True)

        assert host.run_blocking(typed).text == "" and [refused for _, _, refused in runs] == [True]
        runs.clear()
        answer = host.run_blocking(asked)   # `fill` on the command line, as the server runs a command
        assert [(seed, refused) for seed, _, refused in runs] == [(None, True), (7 + EXTRA_SEED_RUNS + 1, False)]
        assert answer.text == runs[-1][1] != ""
        assert answer.details["model_calls"] == 2 and answer.details["refused_runs"] == 1

        # A keystroke while the first sample ran: none is taken again, and the invoke comes back cancelled (its
        # refusal is nobody's answer: the server would have shown the user the reason).
        runs.clear()

        def recorded_then_keystroke(request, cancel, seed=None, speculative=False):
            result = recorded(request, cancel, seed=seed, speculative=speculative)
            cancel.cancel()
            return result

        host._infill = recorded_then_keystroke
        generated = asyncio.run(host.complete(asked, "doc"))
        assert [(seed, refused) for seed, _, refused in runs] == [(None, True)] and generated.cancelled
    finally:
        host.close()


def test_a_load_superseded_while_it_ran_neither_reports_nor_sets_ready():
    """Two quick model-option changes: the first load, already running, must not announce "ready" for settings
    the user has replaced; the newer one, queued behind it, decides the state."""
    from engine.types import EngineConfig
    from lsp_server.model_host import ModelHost

    host = ModelHost()
    try:
        host.latest_load = 2                      # load 2 was asked for while load 1 ran
        assert host._load(EngineConfig(threads=1), generation=1) is None
        assert not host.ready.is_set() and host.state == "loading"
        info, error = host._load(EngineConfig(threads=1), generation=2)
        assert error is None and info["parameters"] > 0 and host.state == "ready"
    finally:
        host.close()


def test_a_load_stopped_by_the_server_closing_is_not_reported_as_loaded(monkeypatch, tiny_model_dir):
    """Shutdown while the model loads: the load stops at its next check. Before, it came back as a load that
    worked, with nothing in it, and the editor was told "model ready on None (0.0M parameters)"."""
    import threading

    import engine.infill_engine as infill_engine
    from engine.types import EngineConfig
    from lsp_server.model_host import ModelHost

    reading, go = threading.Event(), threading.Event()
    real_load = infill_engine.load

    def slow_load(config, cancel=None):
        reading.set()
        go.wait(30)
        return real_load(config, cancel)

    monkeypatch.setattr(infill_engine, "load", slow_load)
    host = ModelHost()
    try:
        loading = host.load(EngineConfig(model=str(tiny_model_dir), threads=1))
        assert reading.wait(30)
        host.close(wait=False)
        go.set()
        assert loading.result(60) is None
        assert host.state == "error" and host.error == "the model load stopped before it finished"
    finally:
        go.set()
        host.close()


def test_a_load_replaced_while_it_reads_the_weights_stops_before_timing_its_engine(monkeypatch, tiny_model_dir):
    """Its engine would never serve a request: the newer load starts as soon as the weights are read, without
    the replaced one's warm-up or step timing (minutes of compiling for the 26B-A4B on a GPU)."""
    import threading

    import engine.infill_engine as infill_engine
    from engine.types import EngineConfig
    from lsp_server.model_host import ModelHost

    reading, go, timed = threading.Event(), threading.Event(), []
    real_load, real_measure = infill_engine.load, infill_engine.InfillEngine.measure_pace

    def slow_load(config, cancel=None):
        reading.set()
        go.wait(30)
        return real_load(config, cancel)

    def counted_measure(self, *args, **kwargs):
        timed.append(self.config.seed)
        return real_measure(self, *args, **kwargs)

    monkeypatch.setattr(infill_engine, "load", slow_load)
    monkeypatch.setattr(infill_engine.InfillEngine, "measure_pace", counted_measure)
    host = ModelHost()
    try:
        first = host.load(EngineConfig(model=str(tiny_model_dir), threads=1, seed=1), measure_pace=True)
        assert reading.wait(30)
        second = host.load(EngineConfig(model=str(tiny_model_dir), threads=1, seed=2), measure_pace=True)
        go.set()
        assert first.result(60) is None                    # replaced: no state of its own
        info, error = second.result(60)
        assert error is None and host.state == "ready" and host.engine.config.seed == 2
        assert timed == [2]                                 # only the engine that serves was timed
    finally:
        host.close()


def test_retune_takes_steps_seed_and_reuse_between_runs(tiny_model_dir):
    from engine import EngineConfig, InfillEngine

    engine = InfillEngine(EngineConfig(model=str(tiny_model_dir), threads=1, max_steps=6))
    engine.fill("x = ", "\n", lengths=[8])
    assert engine.fill("x = ", "\n", lengths=[8]).timings["reused_prompt_tokens"] > 0
    engine.retune(max_steps=3, seed=9, reuse_prefix=False)
    result = engine.fill("x = ", "\n", lengths=[8])
    assert result.items[0].steps <= 3 and result.timings["reused_prompt_tokens"] == 0
    assert engine.config.seed == 9
    engine.retune(max_steps=None, seed=0, reuse_prefix=True)
    assert engine.config.max_steps == 24                # the CPU's default, as at load


@pytest.mark.asyncio
async def test_waiting_for_the_model_holds_no_thread():
    import concurrent.futures

    from lsp_server.model_host import ModelHost

    host = ModelHost()
    loop = asyncio.get_running_loop()
    single = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    loop.set_default_executor(single)
    try:
        waiters = [asyncio.ensure_future(host.wait_ready(5)) for _ in range(3)]
        await asyncio.sleep(0.05)
        # With a thread per waiter the one default thread would be taken and this would queue behind them.
        assert await asyncio.wait_for(loop.run_in_executor(None, lambda: "free"), 1) == "free"
        host.ready.set()
        assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]
        never = ModelHost()
        assert await never.wait_ready(0.05) is False
        never.close()
    finally:
        host.close()
        single.shutdown(wait=False)


def test_a_speculation_moves_the_read_ahead_to_the_end_of_the_suggestion():
    """After a multi-line suggestion is offered, the model's next prompt is at its end (speculation computes
    it): a user who accepts and types there is near that prompt, so the read-ahead (a real job) must not take
    the worker from the speculation. Runs on the server object itself; the model is not loaded, so the queued
    speculation ends at once."""
    from lsp_server.server import document_key, server, speculate

    source = "def f():\r\n    \r\n"
    snap = Snapshot("file:///tmp/units/speculated.py", source, version=1, language_id="python")
    suggestion = "a = 1\r\n    b = 2\r\n    c = 3\r\n    d = 4\r\n    return a"

    async def offered():
        speculate(server, snap, 14, 14, suggestion)
        await server.speculation[1]

    asyncio.run(offered())
    assert server.prompt_place == (document_key(snap.uri), 5)


LONG_SOURCE, LONG_SUGGESTION = "def f():\n    \n", "a = 1\n    b = 2\n    c = 3\n    d = 4\n    return a"


@contextlib.contextmanager
def speculating_from_the_end_of(uri: str, text: str):
    """A server whose model (none loaded) runs a speculation from the end of LONG_SUGGESTION, at its last line
    (where speculate() puts the model's latest prompt), in a document that reads `text`. Yields (server, job)."""
    import threading

    from lsp_server.server import document_key

    ls = bare_server()
    ls.host.engine = object()   # "ready" without loading a model: no job here needs one
    ls.host.ready.set()
    ls.workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="python", version=2, text=text))
    running = threading.Event()

    def speculation(cancelled) -> str:
        running.set()
        deadline = time.monotonic() + 5
        while not cancelled() and time.monotonic() < deadline:
            time.sleep(0.01)
        return "cancelled" if cancelled() else "ran on"

    try:
        job = ls.host.queue.submit("speculation", speculation, speculative=True)
        assert running.wait(5)
        ls.prompt_place = (document_key(uri), 5)
        yield ls, job
    finally:
        ls.host.close()


def edited(ls, uri: str, version: int, text: str, inserted: str) -> None:
    """The document now reads `text`: `inserted` was typed at line 1, column 4. Its didChange's read-ahead runs."""
    from lsp_server.server import document_key, prime_after_edit

    ls.workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text))

    async def change() -> None:
        prime_after_edit(ls, document_key(uri), types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(1, 4), end=types.Position(1, 4)), text=inserted)]))
        await asyncio.sleep(0.3)

    asyncio.run(change())


def test_accepting_a_long_suggestion_does_not_cancel_the_speculation_from_its_end():
    """The read-ahead compared the model's latest prompt (a speculation, at the end of a 5-line suggestion) with
    the edit's first line: accepting the suggestion started a read-ahead, a real job, which cancelled that very
    speculation."""
    uri = "file:///tmp/units/accepted.py"
    accepted = LONG_SOURCE[:13] + LONG_SUGGESTION + LONG_SOURCE[13:]
    with speculating_from_the_end_of(uri, accepted) as (ls, job):
        edited(ls, uri, 2, accepted, LONG_SUGGESTION)
        assert not job.token(), "accepting the suggestion cancelled its speculation"


def test_typing_through_a_long_suggestion_does_not_cancel_the_speculation_from_its_end():
    """Typing the first line of a 5-line suggestion is far from the speculation's place (its last line): each key
    started a read-ahead, a real job, which cancelled the speculation, restarted at the next typed-through answer."""
    from lsp_server.server import document_key
    from lsp_server.suggestions import ShownSuggestion

    uri = "file:///tmp/units/typed_through.py"
    with speculating_from_the_end_of(uri, LONG_SOURCE) as (ls, job):
        ls.suggestions[document_key(uri)] = ShownSuggestion.at(LONG_SOURCE, 13, [LONG_SUGGESTION], several=False)
        edited(ls, uri, 3, LONG_SOURCE[:13] + "a" + LONG_SOURCE[13:], "a")
        assert not job.token(), "typing through the suggestion cancelled its speculation"
        # Something else typed there leaves the suggestion: that place is read ahead, real work before speculation.
        edited(ls, uri, 4, LONG_SOURCE[:13] + "z" + LONG_SOURCE[13:], "z")
        assert job.token(), "the read-ahead away from the suggestion did not run"


@pytest.mark.parametrize("first_line, typed", [("print(a)", "print()"), ('s = "a"', 's = ""'), ("s = 'a'", "s = ''")])
def test_typing_an_auto_closed_bracket_through_a_long_suggestion_does_not_cancel_its_speculation(first_line, typed):
    """An editor that closes brackets and quotes sends `()` or `""` in one change with the cursor between them:
    the cursor was taken after the closer, `print()` did not fit `print(a)`, and the read-ahead started (a real
    job) cancelled the speculation from the suggestion's end; accepting then ran the model."""
    from lsp_server.server import document_key
    from lsp_server.suggestions import ShownSuggestion

    uri = "file:///tmp/units/auto_closed.py"
    suggestion = first_line + "\n    " + LONG_SUGGESTION
    with speculating_from_the_end_of(uri, LONG_SOURCE) as (ls, job):
        ls.suggestions[document_key(uri)] = ShownSuggestion.at(LONG_SOURCE, 13, [suggestion], several=False)
        edited(ls, uri, 3, LONG_SOURCE[:13] + typed + LONG_SOURCE[13:], typed)
        assert not job.token(), f"typing {typed[:-1]!r} through the suggestion cancelled its speculation"


def test_the_candidate_the_editor_shows_after_cycling_is_the_one_speculated():
    """Cycling to the second candidate and accepting it found the speculation done for the first: the request
    after accepting ran the model. The editor's didShowCompletion for it now speculates from its end."""
    from lsp_server.server import document_key, on_did_show
    from lsp_server.suggestions import ShownSuggestion

    ls = bare_server(silent=True)
    uri = "file:///tmp/units/cycled.py"
    ls.workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                                          text=LONG_SOURCE))
    ls.suggestions[document_key(uri)] = ShownSuggestion.at(
        LONG_SOURCE, 13, ["a = 1", "a = 1\n    b = 2\n    c = 3"], several=True, ids=("first", "second"))

    async def shown(suggestion_id: str) -> None:
        on_did_show(ls, {"id": suggestion_id})
        if ls.speculation:
            await ls.speculation[1]   # (no model: it ends at once)

    try:
        asyncio.run(shown("second"))
        assert ls.prompt_place == (document_key(uri), 3), "the second candidate, three lines, was not speculated"
        asyncio.run(shown("first"))
        assert ls.prompt_place == (document_key(uri), 1)
    finally:
        ls.host.close()


def test_the_cache_key_follows_the_whole_documents_indentation_and_a_speculation_keys_as_its_request_will():
    """The cleaning indents in the document's own style, voted over the whole file: two files that share the text
    around the cursor but not their indentation must not share an answer."""
    from lsp_server.server import context_options, language_of, server, speculate

    tail = "".join(f"value_{i} = {i}\n" for i in range(600)) + "def f():\n"
    tabbed = Snapshot("file:///tmp/units/tabs.py", "class A:\n" + "\tx = 1\n" * 50 + tail, version=1,
                      language_id="python")
    spaced = Snapshot("file:///tmp/units/spaces.py", "class A:\n" + "  x = 1\n" * 50 + tail, version=1,
                      language_id="python")

    def key(snap, source=None):
        text = snap.source if source is None else source
        return context_key(text, len(text), len(text), language_of(snap), "inline",
                           context_options(server, snap, source), server.context_reach())

    assert key(tabbed) != key(spaced)
    # A speculation is keyed by the document as it will be once the suggestion is accepted.
    suggestion = "    return 1\n" + "    pass\n" * 40
    asyncio.run(speculated(speculate, server, spaced, suggestion))
    accepted = spaced.source + suggestion
    assert server.speculation[0] == key(Snapshot(spaced.uri, accepted, version=2, language_id="python"))


async def speculated(speculate, server, snap, text):
    speculate(server, snap, len(snap.source), len(snap.source), text)
    await server.speculation[1]


def test_a_request_from_before_a_close_is_dropped_when_the_document_reopens_the_same():
    """A request still waiting out its debounce when its document closes belongs to the closed document. Reopened
    with the same text and version, the document's next request must not share its number, or the old one would
    go on to the model and take the new one's place there. On a server object of its own, no model loaded."""

    from lsp_server.debounce import TypingRhythm
    from lsp_server.server import CANCELLED, complete_inline, document_key, on_close

    ls = bare_server()
    uri, text = "file:///tmp/units/reopened.txt", "notes: the total is \n"
    item = types.TextDocumentItem(uri=uri, language_id="plaintext", version=2, text=text)

    def ask(character: int, kind: types.InlineCompletionTriggerKind):
        return asyncio.ensure_future(complete_inline(ls, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=at(0, character),
            context=types.InlineCompletionContext(trigger_kind=kind))))

    async def scenario():
        ls.workspace.put_text_document(item)
        rhythm = ls.rhythms[document_key(uri)] = TypingRhythm()
        rhythm.keystroke(time.monotonic())              # just typed: an automatic request waits a little
        old = ask(len(text) - 1, types.InlineCompletionTriggerKind.Automatic)
        await asyncio.sleep(0.01)                       # ... in its debounce now
        on_close(ls, types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        ls.workspace.put_text_document(item)            # reopened: same text, same version
        new = ask(3, types.InlineCompletionTriggerKind.Invoked)   # waits for the model, which never loads here
        try:
            return (await asyncio.wait_for(old, 5))[0]
        finally:
            new.cancel()

    assert asyncio.run(scenario()) == CANCELLED


def test_finished_notification_handlers_are_not_kept():
    """pygls files the future of each notification's handler under a fresh id and removes only answered requests':
    every keystroke's didChange stayed in memory for as long as the server ran (about 2.6 MB per 1,000 keys)."""

    ls = bare_server(silent=True)
    uri = "file:///tmp/units/typed.txt"

    def notify(method: str, params: dict) -> None:
        ls.protocol.handle_message(ls.protocol.structure_message({"jsonrpc": "2.0", "method": method,
                                                                  "params": params}))

    async def scenario():
        notify(types.TEXT_DOCUMENT_DID_OPEN, {"textDocument": {"uri": uri, "languageId": "plaintext", "version": 1,
                                                               "text": ""}})
        for version in range(2, 202):
            end = {"line": 0, "character": version - 2}
            notify(types.TEXT_DOCUMENT_DID_CHANGE, {"textDocument": {"uri": uri, "version": version},
                                                    "contentChanges": [{"range": {"start": end, "end": end},
                                                                        "text": "x"}]})
        await asyncio.sleep(0.05)
        return ls.workspace.get_text_document(uri).source, len(ls.protocol._request_futures)

    assert asyncio.run(scenario()) == ("x" * 200, 0)


def test_a_request_whose_document_closed_before_it_ran_keeps_nothing_for_it():
    """Its task started after the didClose was read (a client that sends both in one write, over TCP): the request
    filed a generation for the closed document, which nothing removed. And closing documents no selection command
    works on keeps no count of them."""

    from lsp_server.protocol import documents_at_request
    from lsp_server.server import CANCELLED, complete_inline, document_key, forget_document

    ls = bare_server()
    uri = "file:///tmp/units/closed.txt"
    ls.workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="plaintext", version=1, text="a b"))
    seen = dict(ls.workspace.text_documents)   # the documents as the request arrived
    ls.workspace.remove_text_document(uri)
    forget_document(ls, document_key(uri))      # ... and then its didClose

    async def scenario():
        documents_at_request.set(seen)
        return await complete_inline(ls, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=at(0, 3),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))

    assert asyncio.run(scenario()) == (CANCELLED, [])
    assert ls.generations == {} and ls.closings == {}


def test_the_documents_a_request_saw_stay_with_that_request():
    """The copy of the open documents taken as a request arrives was left set in the reader's context, so every
    notification handled after it (a notebook cell's read-ahead) read the documents as that request had seen them."""

    from lsp_server.protocol import documents_at_request

    ls = bare_server(silent=True)
    uri = "file:///tmp/units/seen.py"

    async def scenario():
        ls.workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="python", version=1, text="old"))
        ls.protocol._handle_request(1, types.WORKSPACE_EXECUTE_COMMAND,
                                    types.ExecuteCommandParams(command="infill.status", arguments=[]))
        await asyncio.sleep(0.05)
        return documents_at_request.get()

    assert asyncio.run(scenario()) is None


def test_the_still_loading_message_is_said_once_per_load_not_once_per_session(monkeypatch):
    # A slow reload after the user changed the model said nothing: the message had been shown at the first load.
    from concurrent.futures import Future

    from lsp_server.server import STILL_LOADING, InfillServer, load_model

    ls = InfillServer()
    ls.protocol._workspace = None
    shown = []
    monkeypatch.setattr(ls, "window_show_message", lambda params: shown.append(params.message))
    monkeypatch.setattr(ls, "window_log_message", lambda params: None)
    monkeypatch.setattr(ls, "publish_status", lambda **kwargs: None)
    monkeypatch.setattr(ls.protocol, "client_capabilities", types.ClientCapabilities(), raising=False)
    loaded = Future()
    loaded.set_result(({"device": "cpu", "parameters": 1}, None))
    monkeypatch.setattr(ls.host, "load", lambda *args, **kwargs: loaded)
    ls.tell(STILL_LOADING, once=True)
    ls.tell(STILL_LOADING, once=True)
    assert shown == [f"Diffusion Infill: {STILL_LOADING}"]
    asyncio.run(load_model(ls))   # the user changed the model: a new load
    ls.tell(STILL_LOADING, once=True)
    assert shown == [f"Diffusion Infill: {STILL_LOADING}"] * 2


def test_a_speculation_the_engine_failed_in_is_run_again_when_the_user_gets_there(tiny_model_dir):
    """Out of GPU memory (or any engine error) while speculating: the speculation has no text, but not because
    the model found nothing there. Before, it was adopted as "nothing here" and kept as speculated, so the user
    who got to that place got no suggestion and no message, and the model was never asked again."""

    from engine.types import EngineConfig, EngineError
    from lsp_server.server import complete_inline, speculate, speculated_already

    ls = bare_server()
    ls.options = replace(ls.options, readAhead=False)
    info, error = ls.host.load(EngineConfig(model=str(tiny_model_dir), threads=1)).result(120)
    assert error is None
    real_engine, failures = ls.host.engine, []

    class OutOfMemoryOnce:
        def fill(self, prefix, suffix, **kwargs):
            if not failures:
                failures.append(1)
                raise EngineError("out of GPU memory while generating")
            return real_engine.fill(prefix, suffix, **kwargs)

        def __getattr__(self, name):
            return getattr(real_engine, name)

    ls.host.engine = OutOfMemoryOnce()
    uri, source, suggestion = "file:///tmp/units/spec-failed.txt", "notes: the total is \n", "forty"
    accepted = source[:20] + suggestion + source[20:]
    ls.workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="plaintext", version=2,
                                                          text=accepted))
    snap = Snapshot(uri, source, version=1, language_id="plaintext")

    async def accept_and_ask():
        speculate(ls, snap, 20, 20, suggestion)
        generated = await ls.speculation[1]
        assert generated.failed and not generated.cancelled and not generated.texts
        # Not speculated again at each key typed through the suggestion: one failed run is enough.
        assert speculated_already(ls, ls.speculation[0])
        runs = ls.host.model_runs
        await complete_inline(ls, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(0, 25),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
        return ls.host.model_runs - runs

    try:
        assert asyncio.run(accept_and_ask()) >= 1, "the failed speculation was taken as the model's answer"
        assert failures == [1]
    finally:
        ls.host.close()


# ---- which other open documents lend snippets -----------------------------------------------------------------

def lending_server(options: dict | None = None):
    """A bare server in a workspace folder /proj, with related files on."""
    ls = bare_server(folder="file:///proj")
    ls.options = parse_options({"relatedFiles": "on", **(options or {})})[0]
    return ls


def open_file(ls, name: str, text: str, language_id: str = "python") -> None:
    ls.workspace.put_text_document(types.TextDocumentItem(uri=f"file:///proj/{name}", language_id=language_id,
                                                          version=1, text=text))


def open_other_notebook(ls, name: str, texts: list[str]) -> None:
    cells = [types.TextDocumentItem(uri=f"vscode-notebook-cell:/proj/{name}#cell{i}", language_id="python",
                                    version=1, text=text) for i, text in enumerate(texts)]
    ls.workspace.put_notebook_document(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(
            uri=f"file:///proj/{name}", notebook_type="jupyter-notebook", version=1,
            cells=[types.NotebookCell(kind=types.NotebookCellKind.Code, document=cell.uri) for cell in cells]),
        cell_text_documents=cells))


def lenders_for(ls, name: str) -> list[str]:
    from lsp_server.server import other_documents

    snap = Snapshot.of(ls.workspace.get_text_document(f"file:///proj/{name}"))
    return [key.rsplit("/", 1)[-1] for key, _ in other_documents(ls, snap)]


def test_another_notebooks_cells_count_as_one_document_and_leave_room_for_files():
    """A notebook's 12 cells, each a document, took all 10 places: helpers.py, opened after it and defining the
    function being called, was never searched (a helper's reproducer)."""
    from lsp_server.server import MAX_CELLS_PER_NOTEBOOK

    ls = lending_server()
    open_other_notebook(ls, "analysis.ipynb", ["import pandas\n", "def load_frame(i):\n    ...\n"]
                        + [f"x{i} = load_frame({i})\n" for i in range(10)])
    open_file(ls, "helpers.py", "def parse_invoice_line(raw_line, table):\n    ...\n")
    open_file(ls, "main.py", "from helpers import parse_invoice_line\n")
    lenders = lenders_for(ls, "main.py")
    assert "helpers.py" in lenders
    # its cells from the top, where the definitions are (the last ten left out the one being called); an edited
    # cell first
    cells = [name for name in lenders if name.startswith("analysis.ipynb#")]
    assert cells == [f"analysis.ipynb#cell{i}" for i in range(MAX_CELLS_PER_NOTEBOOK)]
    ls.touch("vscode-notebook-cell:/proj/analysis.ipynb#cell11")
    cells = [name for name in lenders_for(ls, "main.py") if name.startswith("analysis.ipynb#")]
    assert cells == ["analysis.ipynb#cell11"] + [f"analysis.ipynb#cell{i}" for i in range(MAX_CELLS_PER_NOTEBOOK - 1)]


def test_the_file_opened_last_is_searched_before_older_ones():
    """Eleven files opened, none edited: the one opened last (the one just looked up) was the one left out."""
    ls = lending_server()
    for i in range(11):
        open_file(ls, f"m{i:02}.py", f"def helper_{i}():\n    return {i}\n")
    open_file(ls, "main.py", "x = helper_10()\n")
    lenders = lenders_for(ls, "main.py")
    assert lenders[0] == "m10.py" and "m00.py" not in lenders and len(lenders) == 10


def test_a_cell_of_another_language_in_another_notebook_lends_no_python():
    """Jupyter calls a `%%bash` cell Python: another notebook's shell cell went into a Python file's prompt."""
    ls = lending_server()
    open_other_notebook(ls, "report.ipynb", ["%%bash\nfor customer_file in exports/*.csv; do\n  wc -l $f\ndone\n",
                                             "customer_counts = {}\n"])
    open_file(ls, "main.py", "for customer_file in files:\n    customer_counts[customer_file] = 0\n")
    assert lenders_for(ls, "main.py") == ["report.ipynb#cell1"]


def test_a_warning_on_an_applied_rewrite_is_shown_and_answered_every_time(tiny_model_dir):
    """The warning that comes with an applied edit (an instruction no model here follows, a fill cut at its
    length limit) is news at every command. It was shown once a session (keyed by its text) and left out of the
    answer, so the second rewrite with an instruction was applied with no word that the instruction was ignored."""
    from engine.types import Candidate, Candidates, EngineConfig
    from lsp_server.server import edit_selection_in

    ls = bare_server()
    shown: list[str] = []
    ls.window_show_message = lambda params: shown.append(params.message)
    ls.protocol.client_capabilities = types.ClientCapabilities(
        workspace=types.WorkspaceClientCapabilities(apply_edit=True))
    info, error = ls.host.load(EngineConfig(model=str(tiny_model_dir), threads=1)).result(120)
    assert error is None
    real_engine = ls.host.engine

    written = ["return total\n"] * 2 + ["return 0\n"]

    class RewritesAsTotal:   # the real engine, except that its rewrite is known text
        def rewrite(self, prefix, suffix, original, **kwargs):
            return Candidates([Candidate(written.pop(0), 0.9, 3, 16, 4, True)], "spm-sentinels", "known text")

        def __getattr__(self, name):
            return getattr(real_engine, name)

    ls.host.engine = RewritesAsTotal()
    applied = []

    async def apply_edit(params):
        applied.append(params)
        return {"applied": True}   # (pygls hands the client's answer over as plain JSON)

    ls.workspace_apply_edit_async = apply_edit
    uri = "file:///tmp/units/rewrite-twice.py"
    ls.workspace.put_text_document(types.TextDocumentItem(
        uri=uri, language_id="python", version=1, text="def f(total):\n    return 0\n"))
    selection = types.Range(start=at(1, 4), end=at(2, 0))

    async def rewrite_thrice():
        return [await edit_selection_in(ls, "rewrite", uri, selection, "use total", None, None) for _ in range(3)]

    try:
        answers = asyncio.run(rewrite_thrice())
    finally:
        ls.host.close()
    assert [a["applied"] for a in answers] == [True, True, False] and len(applied) == 2, answers
    for answer in answers[:2]:
        assert "instruction was not used" in answer["message"], answer
    # the third wrote the selection as it was: nothing was rewritten, and that alone is said
    assert "as it already is" in answers[2]["message"]
    assert sum("instruction was not used" in m for m in shown) == 2 and "as it already is" in shown[-1], shown


def test_a_file_reopened_at_the_same_version_with_other_text_changes_the_cache_key():
    """VS Code starts a reopened document at version 1 again: helpers.py closed, changed on disk (a checkout) and
    reopened keyed as before, so an answer made from its old snippets came from the cache (a helper's reproducer)."""
    from lsp_server.server import context_options

    ls = lending_server()
    open_file(ls, "helpers.py", "def compute_total_price(items, tax_rate):\n    return 0\n")
    open_file(ls, "main.py", "total = compute_total_price(\n")
    snap = Snapshot.of(ls.workspace.get_text_document("file:///proj/main.py"))
    before = context_options(ls, snap)
    assert context_options(ls, snap) == before   # nothing changed: the same key
    ls.workspace.remove_text_document("file:///proj/helpers.py")
    open_file(ls, "helpers.py", "def render_banner(title, width):\n    return title\n")   # version 1 again
    assert context_options(ls, snap) != before


def test_closing_a_document_stops_the_speculation_computed_for_it():
    """The speculation runs under a key of its own, not among the document's jobs: after the tab closed, the
    model still ran a whole speculative pass for it."""
    from lsp_server.server import forget_document

    ls = bare_server()
    cancelled = []
    ls.host.cancel_speculation = lambda: cancelled.append(True)

    async def scenario():
        ls.speculation = ((), asyncio.get_running_loop().create_future(), "file:///tmp/units/kept.py")
        forget_document(ls, "file:///tmp/units/other.py")   # another document's speculation goes on
        assert ls.speculation is not None and not cancelled
        forget_document(ls, "file:///tmp/units/kept.py")
        assert ls.speculation is None and cancelled == [True]

    asyncio.run(scenario())


def test_a_rejected_suggestion_does_not_come_back_by_typing_its_first_character():
    """Escape in Neovim sends infill.rejected; typing the suggestion's first character then showed the rest of it
    again from the typed-through state, without the model. Only the suggestion rejected goes: a late reject of an
    older one leaves the newer one; the rest of one partly accepted goes too, though its id was settled."""
    from lsp_server.server import document_key, settle
    from lsp_server.suggestions import ShownSuggestion

    ls = bare_server()
    uri, source = "file:///tmp/units/rejected.txt", "notes: the total is \n"
    key = document_key(uri)

    def shown() -> str:
        suggestion_id = ls.ids.new()
        ls.suggestions[key] = ShownSuggestion.at(source, 20, ["42 items"], several=False, ids=(suggestion_id,))
        return suggestion_id

    older, newer = shown(), shown()
    assert settle(ls, [{"id": older}], accepted=False)["counted"] and key in ls.suggestions   # not the one shown
    assert not settle(ls, [{"id": "s999"}], accepted=False)["counted"] and key in ls.suggestions   # not ours
    assert settle(ls, [{"id": newer}], accepted=False)["counted"] and key not in ls.suggestions
    partly = shown()
    assert settle(ls, [{"id": partly}], accepted=True)["counted"] and key in ls.suggestions   # accept a word: kept
    assert not settle(ls, [{"id": partly}], accepted=False)["counted"]   # Escape on the rest, under the same id
    assert key not in ls.suggestions


@pytest.mark.parametrize("model, complaint", [("/nonexistent/model", "model folder not found"),
                                              ("{tmp}", "no config.json"),
                                              ("someone/some-model", "downloading is off")])
def test_a_model_that_cannot_be_found_is_refused_before_torch_is_imported(tmp_path, model, complaint):
    """A wrong path (typed in a settings box, or on the command line) was said only after the seconds torch and
    transformers take to import. In a process of its own, which has not imported them yet."""
    import subprocess
    import sys

    script = ("import sys\n"
              "from engine.types import EngineConfig\n"
              "from lsp_server.model_host import ModelHost\n"
              "host = ModelHost()\n"
              f"info, error = host.load(EngineConfig(model={model.format(tmp=tmp_path)!r})).result(60)\n"
              "host.close()\n"
              "print(error)\n"
              "print('torch' in sys.modules, 'transformers' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    error, imported = done.stdout.strip().splitlines()
    assert complaint in error and imported == "False False"


def test_an_import_added_above_moves_the_documents_remembered_prefix_start():
    """The remembered start was an offset left as it was: after an import above it pointed into another line, and
    the next request cut its prefix afresh (the engine read the whole prompt again)."""
    from infill.plan import ContextMemory
    from lsp_server.server import document_key, on_change

    ls = bare_server(silent=True)
    uri = "file:///tmp/units/moved.py"
    text = "".join(f"v{i} = {i}\n" for i in range(40))
    ls.workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text))
    key = document_key(uri)
    ls.context_memory[key] = ContextMemory.of({"context": {"prefix_start": text.index("v30 =")}}, text)
    change = types.TextDocumentContentChangePartial(range=types.Range(start=at(0, 0), end=at(0, 0)),
                                                    text="import os\n")
    params = types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2), content_changes=[change])
    try:
        ls.workspace.update_text_document(params.text_document, change)
        on_change(ls, params)
        source = ls.workspace.get_text_document(uri).source
        memory = ls.context_memory[key]
        assert source[memory.prefix_start:].startswith("v30 = 30\n") and memory.prefix_line == 31
    finally:
        ls.host.close()


@pytest.mark.parametrize("replacement, kept", [("import math", True), ("import cmath", False)])
def test_a_change_that_leaves_the_text_as_it_was_keeps_the_work_on_it(replacement, kept):
    """A formatter replacing a range with the same text (or a version bump with no changes) cancelled the running
    suggestion, and threw away its answer for the version's sake: an invoked request came back empty."""
    from lsp_server.server import document_key, is_current, jobs_of, on_change, snapshot

    ls = bare_server(silent=True)
    uri = "file:///tmp/units/same-text.py"
    ls.workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                                          text="import math\nx = math.\n"))
    snap = snapshot(ls, uri)
    cancelled: list[str] = []
    ls.host.cancel = cancelled.append
    change = types.TextDocumentContentChangePartial(range=types.Range(start=at(0, 0), end=at(0, 11)),
                                                    text=replacement)
    params = types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2), content_changes=[change])
    try:
        ls.protocol.apply_changes(params.text_document, params.content_changes)
        on_change(ls, params)
        assert ls.workspace.get_text_document(uri).version == 2
        assert is_current(ls, snap) is kept
        assert cancelled == ([] if kept else list(jobs_of(document_key(uri))))
    finally:
        ls.host.close()


def test_a_change_that_kept_one_documents_text_does_not_spare_another_changed_with_it():
    """A notebook's change applies to all its cells before the handler sees each: one flag for the latest
    change let a cell whose text changed keep its jobs when a later cell's text stayed as it was."""
    from lsp_server.server import document_key, jobs_of, on_change

    ls = bare_server(silent=True)
    uris = ["file:///tmp/units/cell-0.py", "file:///tmp/units/cell-1.py"]
    for uri in uris:
        ls.workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                                              text="x = 1\n"))
    cancelled: list[str] = []
    ls.host.cancel = cancelled.append
    changes = [types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=at(0, 0), end=at(0, 1)),
                                                                text=name)]) for uri, name in zip(uris, "yx")]
    try:
        for params in changes:
            ls.protocol.apply_changes(params.text_document, params.content_changes)
        for params in changes:
            on_change(ls, params)
        assert cancelled == list(jobs_of(document_key(uris[0])))
    finally:
        ls.host.close()
