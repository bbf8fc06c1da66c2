"""`infill-lsp` on the command line: `fill FILE:LINE:COL` prints what the server would insert; errors exit 1."""
from __future__ import annotations

import io
import json
import signal
import socket
import struct
import os
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest
from lsprotocol import types

from conftest import DATA, FAST_OPTIONS, inline_at, lsp_session, open_document, progress_end

SHAPES = DATA / "shapes.py"
FAST_FLAGS = ["--threads", str(FAST_OPTIONS["threads"]), "--steps", str(FAST_OPTIONS["steps"]),
              "--max-new-tokens", str(FAST_OPTIONS["maxNewTokens"])]


def infill_lsp(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lsp_server", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def json_fill():
    """One JSON fill after `    return ` in rectangle_area (line 10, column 12), shared by the tests below."""
    done = infill_lsp("fill", f"{SHAPES}:10:12", "--json", *FAST_FLAGS)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_fill_prints_exactly_the_text_of_the_json_answer(json_fill):
    done = infill_lsp("fill", f"{SHAPES}:10:12", *FAST_FLAGS)
    assert done.returncode == 0, done.stderr
    assert json_fill["text"].strip()
    assert done.stdout == json_fill["text"]   # no decoration, no newline of our own


def test_fill_json_has_range_timings_and_details(json_fill):
    assert json_fill["mode"] == "inline"
    cursor = {"line": 10, "column": 12}
    assert json_fill["range"]["start"] == cursor and json_fill["range"]["end"] == cursor
    offset = SHAPES.read_text().index("    return \n") + len("    return ")
    assert json_fill["range"]["offsets"] == [offset, offset]
    timings = json_fill["timings"]
    assert timings["load_ms"] > 0 and timings["infill_ms"] > 0 and timings["total_ms"] > 0
    assert json_fill["details"]["language"] == "python"
    assert json_fill["model"]["parameters"] > 0


@pytest.mark.asyncio
async def test_fill_prints_what_the_language_server_offers(json_fill):
    """Same engine construction, same request, same seed: the editor and the command line agree. The command
    line is an explicit request, so it is compared with an invoked one (automatic suggestions have a latency
    budget and may run fewer steps); the invoke's first item is the same choice, the others are extra candidates.

    The request goes out at once, while the model is still loading: it waits for the model instead of failing."""
    async with lsp_session(FAST_OPTIONS) as client:
        uri = "file:///tmp/infill-tests/shapes.py"
        open_document(client, uri, SHAPES.read_text())
        assert progress_end(client) is None            # loading takes seconds: the model is not ready yet
        answer = await inline_at(client, uri, 9, 11, types.InlineCompletionTriggerKind.Invoked)
        assert progress_end(client) is not None and "model ready" in progress_end(client).message
    assert answer.items and answer.items[0].insert_text == json_fill["text"]


def test_the_readme_demo_command_works():
    """README and .ci/run call `infill-lsp fill examples/demo.py:13:9` right after installing."""
    demo = DATA.parent.parent / "examples" / "demo.py"
    done = infill_lsp("fill", f"{demo}:13:9", *FAST_FLAGS)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_ctrl_c_stops_fill_with_a_message_not_a_crash(tmp_path):
    """Ctrl+C while the model loads or writes: one line on stderr and the shell's 130, not a traceback followed
    by an abort from the model's thread still inside torch at exit."""
    source = tmp_path / "long.py"
    source.write_text("def f(xs):\n" + "".join(f"    total_{i} = sum(x * {i} for x in xs)\n" for i in range(40)))
    # The signal goes once torch is being imported (its library mapped into the process): importing transformers,
    # loading and the fill (up to 256 steps a canvas) still take seconds after that, so it lands while the model
    # loads or writes, whatever the machine's speed.
    # (Ctrl+C as a terminal gives it: a suite started in the background passes its children SIGINT ignored.)
    fill = subprocess.Popen([sys.executable, "-m", "lsp_server", "fill", f"{source}:2:1-41:39", "--steps", "256",
                             "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    maps = Path(f"/proc/{fill.pid}/maps")
    deadline = time.monotonic() + 60
    while fill.poll() is None and "libtorch" not in maps.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    fill.send_signal(signal.SIGINT)
    _, stderr = fill.communicate(timeout=120)
    assert fill.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "infill-lsp fill: interrupted"
    assert "Traceback" not in stderr and "terminate called" not in stderr


def test_an_empty_answer_says_why_on_stderr():
    """Inside a word nothing is offered; the editor shows nothing, but a person at a terminal is told why."""
    done = infill_lsp("fill", f"{SHAPES}:5:9", *FAST_FLAGS)   # def circ|le_area
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "no suggestion: the cursor is inside a word" in done.stderr


def test_fill_a_range_replaces_the_selection():
    done = infill_lsp("fill", f"{SHAPES}:6:5-6:33", "--json", *FAST_FLAGS)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["mode"] == "fill"
    assert answer["range"]["start"] == {"line": 6, "column": 5} and answer["range"]["end"] == {"line": 6, "column": 33}
    assert answer["text"] or answer["message"]   # the new text for the selection, or why there is none


def test_rewrite_a_range_answers_as_the_rewrite_command_does():
    done = infill_lsp("rewrite", f"{SHAPES}:6:5-6:33", "--json", "--instruction", "shorter", *FAST_FLAGS)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["mode"] == "rewrite"
    assert answer["range"]["start"] == {"line": 6, "column": 5} and answer["range"]["end"] == {"line": 6, "column": 33}
    assert answer["text"] or answer["message"]
    assert answer["details"]["candidates"], answer   # the model ran on the range as its starting canvas
    if answer["text"]:   # no model here follows an instruction: the answer says so rather than seem to obey
        assert "instruction was not used" in answer["message"], answer["message"]
    # The edits are what the command applies: they rebuild the range's new text and touch nothing else.
    source = Path(SHAPES).read_text()
    a, b = answer["range"]["offsets"]
    rebuilt = source
    for edit in sorted(answer["edits"], key=lambda e: e["range"]["offsets"][0], reverse=True):
        start, end = edit["range"]["offsets"]
        assert a <= start <= end <= b
        rebuilt = rebuilt[:start] + edit["newText"] + rebuilt[end:]
    assert rebuilt == source[:a] + answer["text"] + source[b:] if answer["text"] else rebuilt == source


@pytest.mark.parametrize("args, code, complaint", [
    (["rewrite", "{data}/shapes.py:6:5"], 1, "rewrite needs a range, FILE:L1:C1-L2:C2"),
    (["rewrite", "{data}/shapes.py:6:5-6:5"], 1, "is empty: nothing to rewrite"),
    (["rewrite", "{data}/no_such_file.py:1:1-1:2"], 1, "infill-lsp rewrite: no such file"),
    (["fill", "{data}/shapes.py:6:5", "--instruction", "x"], 2, "unrecognized arguments: --instruction"),
])
def test_rewrite_without_a_range_or_fill_with_an_instruction_is_refused(args, code, complaint):
    done = infill_lsp(*[arg.format(data=DATA) for arg in args])
    assert done.returncode == code and complaint in done.stderr, done.stderr


@pytest.mark.parametrize("spec, complaint", [
    ("{data}/no_such_file.py:1:1", "no such file"),
    ("{data}/shapes.py", "expected FILE:LINE:COL"),
    ("{data}/shapes.py:ten:1", "expected FILE:LINE:COL"),
    ("{data}/shapes.py:0:1", "start at 1"),
    ("{data}/shapes.py:99:1", "outside the file"),
    ("{data}/shapes.py:1:500", "past the end of line 1 (its last column is"),
    ("{data}/shapes.py:6:33-6:5", "ends before it starts"),
    ("{data}/shapes.py:6:5-6:5", "is empty"),                 # before: the model loaded, then exit 0
    ("{data}:1:1", "not a regular file"),
    # beyond what an LSP position holds: an answer, not a traceback
    ("{data}/shapes.py:99999999999999999999:1", "outside the file"),
    ("{data}/shapes.py:1:4294967297", "past the end of line 1"),
    ("{data}/shapes.py:1:1-1:99999999999", "past the end of line 1"),
    ("{data}/shapes.py:\u0661:1", "expected FILE:LINE:COL"),   # an Arabic-Indic one is no line number here
])
def test_bad_locations_exit_1_with_a_message(spec, complaint):
    done = infill_lsp("fill", spec.format(data=DATA), timeout=60)
    assert done.returncode == 1
    assert complaint in done.stderr and done.stderr.startswith("infill-lsp fill:")
    assert done.stdout == ""


@pytest.mark.parametrize("spec, complaint", [("{data}/no_such_file.py:1:1", "no such file"),
                                             ("{data}/shapes.py:99:1", "outside the file")])
def test_with_json_a_failure_is_a_json_object_with_the_error_too(spec, complaint):
    done = infill_lsp("fill", spec.format(data=DATA), "--json", timeout=60)
    assert done.returncode == 1 and complaint in done.stderr
    answer = json.loads(done.stdout)   # a script reading stdout gets an object, not nothing
    assert complaint in answer["error"] and answer["exit_code"] == 1 and "text" not in answer
    assert answer["location"] == spec.format(data=DATA)


@pytest.mark.parametrize("flags, complaint", [(["--steps", "0"], "steps"), (["--threads", "abc"], "threads"),
                                               (["--ste", "0"], "steps")])   # argparse reads --ste as --steps
@pytest.mark.parametrize("flags_first", [False, True])
def test_with_json_a_bad_flag_is_a_json_object_too(flags, complaint, flags_first):
    """argparse's own errors printed only the usage on stderr: a script parsing stdout read nothing. The location
    is the file's, wherever the flags are (before, `--steps 0 FILE` named "0")."""
    location = f"{DATA}/shapes.py:10:12"
    arguments = [*flags, location] if flags_first else [location, *flags]
    done = infill_lsp("fill", *arguments, "--json", timeout=60)
    assert done.returncode == 2 and complaint in done.stderr
    answer = json.loads(done.stdout)
    assert complaint in answer["error"] and answer["exit_code"] == 2 and answer["location"] == location


def test_an_abbreviated_json_flag_still_gets_the_json_object():
    """argparse takes `--js` for `--json`: the error object must come too (before, only the usage on stderr)."""
    location = f"{DATA}/shapes.py:10:12"
    done = infill_lsp("fill", "--ste", "0", location, "--js", timeout=60)
    assert done.returncode == 2
    assert json.loads(done.stdout)["location"] == location


def test_a_byte_order_mark_is_not_a_column(tmp_path):
    marked = tmp_path / "marked.py"
    marked.write_bytes(b"\xef\xbb\xbfimport os\nx = \n")
    done = infill_lsp("fill", f"{marked}:1:11", timeout=60)   # "import os" has 9 characters: 10 is its end
    assert done.returncode == 1 and "past the end of line 1 (its last column is 10)" in done.stderr
    done = infill_lsp("fill", f"{marked}:2:5", "--json", *FAST_FLAGS)
    assert done.returncode == 0, done.stderr
    as_decoded = marked.read_text(encoding="utf-8")             # the mark is one character there
    assert json.loads(done.stdout)["range"]["offsets"][0] == as_decoded.index("x = ") + len("x = ")


def test_binary_and_non_utf8_files_exit_1(tmp_path):
    binary = tmp_path / "blob.py"
    binary.write_bytes(b"x = 1\n\x00\x01\x02")
    latin1 = tmp_path / "latin1.py"
    latin1.write_bytes("name = 'Zoë'\n".encode("latin-1"))
    marked = tmp_path / "marked_latin1.py"   # the byte named is the file's, the mark counted
    marked.write_bytes(b"\xef\xbb\xbf" + 'x = "é"\n'.encode("latin-1"))
    empty = tmp_path / "empty.py"
    empty.write_bytes(b"")
    done = infill_lsp("fill", f"{empty}:3:1", timeout=60)
    assert done.returncode == 1 and "outside the file (it has 1 line)" in done.stderr, done.stderr
    for path, complaint in ((binary, "NUL bytes"), (latin1, "not valid UTF-8"), (marked, "at byte 8)")):
        done = infill_lsp("fill", f"{path}:1:1", timeout=60)
        assert done.returncode == 1 and complaint in done.stderr and done.stdout == ""


def test_files_too_large_utf16_or_unreadable_exit_1_before_the_model_loads(tmp_path):
    huge = tmp_path / "huge.py"
    with huge.open("wb") as out:
        out.truncate(3 * 1024 * 1024)   # sparse: nothing to read, and it must not be read
    utf16 = tmp_path / "utf16.py"
    utf16.write_bytes("def f():\n    pass\n".encode("utf-16"))
    just_over = tmp_path / "just_over.py"   # a byte-order mark's 3 bytes are allowed over, nothing else
    just_over.write_bytes(b"#" * (2 * 1024 * 1024 + 1))
    loop = tmp_path / "loop.py"
    loop.symlink_to(loop)
    for path, complaint in ((huge, "larger than 2 MB"), (utf16, "UTF-16"), ("/proc/self/mem", "cannot read"),
                            (just_over, "larger than 2 MB"), (loop, "cannot read")):
        done = infill_lsp("fill", f"{path}:1:1", timeout=60)
        assert done.returncode == 1 and complaint in done.stderr and done.stdout == "", done.stderr
        assert "Traceback" not in done.stderr


def test_a_device_this_machine_lacks_or_a_broken_tokenizer_is_one_line_not_a_traceback(tmp_path):
    import shutil

    from engine.loading import DEFAULT_MODEL_DIR

    done = infill_lsp("fill", f"{SHAPES}:10:12", "--device", "mps", "--threads", "1")
    assert done.returncode == 1 and "MPS is not available" in done.stderr and "Traceback" not in done.stderr
    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)
    (model / "tokenizer_config.json").unlink()   # tokenizer.json alone names no unknown token: encoding fails
    done = infill_lsp("fill", f"{SHAPES}:10:12", "--model", str(model), "--threads", "1")
    assert done.returncode == 1 and done.stdout == ""
    assert "tokenizer_config.json" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_log_file_that_cannot_be_written_or_a_bad_tcp_address_is_a_usage_error(tmp_path):
    done = infill_lsp("fill", f"{SHAPES}:10:12", "--log-file", str(tmp_path / "missing" / "log"), timeout=60)
    assert done.returncode == 2 and "cannot write the log file" in done.stderr and "Traceback" not in done.stderr
    done = infill_lsp("--log-file", str(tmp_path / "missing" / "log"), timeout=60)
    assert done.returncode == 2 and "cannot write the log file" in done.stderr
    for address in ("127.0.0.1:99999", ":\u00b2"):   # a superscript two is a digit to str.isdigit, no port
        done = infill_lsp("--tcp", address, timeout=60)
        assert done.returncode == 2 and "to 65535" in done.stderr and "Traceback" not in done.stderr
    for host in ("1.2.3", "127.1", "[::1::]"):   # the system would read 1.2.3 as 1.2.0.3 and 127.1 as 127.0.0.1
        done = infill_lsp("--tcp", f"{host}:2087", timeout=60)
        assert done.returncode == 2 and "is not an IP address" in done.stderr, done.stderr
    # hex and short forms the system reads its own way, brackets around anything but IPv6, and names with an empty
    # or over-long label (a UnicodeError traceback from deep inside asyncio)
    for host, complaint in (("0x7f000001", "is not an IP address"), ("[localhost]", "is not an IP address"),
                            ("[]", "is not an IP address"), ("[127.0.0.1]", "brackets hold an IPv6 address"),
                            ("ex..com", "is not a host name"), ("a" * 64 + ".com", "is not a host name")):
        done = infill_lsp("--tcp", f"{host}:2087", timeout=60)
        assert done.returncode == 2 and complaint in done.stderr and "Traceback" not in done.stderr, (host, done.stderr)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = infill_lsp("--tcp", f"127.0.0.1:{taken.getsockname()[1]}", timeout=60)
    assert done.returncode == 1 and "cannot listen on" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("make_folder, complaint", [(False, "model folder not found"), (True, "no config.json")])
def test_model_that_cannot_load_exits_1(tmp_path, make_folder, complaint):
    model = tmp_path / "model"
    if make_folder:  # nothing but a garbage weights file
        model.mkdir()
        (model / "model.safetensors").write_bytes(b"\x01garbage" * 100)
    done = infill_lsp("fill", f"{SHAPES}:10:12", "--model", str(model), "--threads", "1")
    assert done.returncode == 1
    assert complaint in done.stderr and done.stdout == ""


@pytest.mark.parametrize("flag, value, expected", [("--dtype", "float8", "float32"), ("--steps", "0", "from 1 to 256"),
                                                   ("--device", "tpu", "cuda:N"), ("--quantize", "int2", "int8")])
def test_a_bad_option_value_is_a_usage_error_before_the_model_loads(flag, value, expected):
    """One answer was asked for: a value the server would replace by its default is the user's to fix first (it
    printed a warning naming the editor's setting, and exited 0)."""
    done = infill_lsp("fill", f"{SHAPES}:10:12", flag, value, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert f"error: {flag} {value}: expected" in done.stderr and expected in done.stderr, done.stderr


def test_a_closed_or_broken_stdout_is_not_a_traceback():
    closed = subprocess.run([sys.executable, "-m", "lsp_server", "fill", f"{SHAPES}:10:12"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, timeout=60,
                            preexec_fn=lambda: os.close(1))
    assert closed.returncode == 1 and "standard output is closed" in closed.stderr, closed.stderr
    # The reader of the pipe gone before the answer is written (`| head -c0`).
    reader, writer = os.pipe()
    os.close(reader)
    broken = subprocess.run([sys.executable, "-m", "lsp_server", "fill", f"{SHAPES}:10:12", "--json", *FAST_FLAGS],
                            stdout=writer, stderr=subprocess.PIPE, text=True, timeout=300)
    os.close(writer)
    assert broken.returncode == 141 and "Traceback" not in broken.stderr, broken.stderr


def test_an_output_that_cannot_be_written_is_one_line_not_a_traceback():
    """A full disk (/dev/full) under the answer, and under a usage error's --json object."""
    with open("/dev/full", "w") as full:
        for args in (["fill", f"{SHAPES}:10:12", *FAST_FLAGS], ["fill", f"{SHAPES}:10:12", "--json", *FAST_FLAGS],
                     ["fill", f"{SHAPES}:0:1", "--json"]):
            done = subprocess.run([sys.executable, "-m", "lsp_server", *args], stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=300)
            assert done.returncode == 1 and "Traceback" not in done.stderr, (args, done.stderr)
            assert "cannot write the output" in done.stderr or "start at 1" in done.stderr, done.stderr


def test_the_stdio_server_with_a_closed_stdin_or_stdout_says_so():
    for closed in (0, 1):
        done = subprocess.run([sys.executable, "-m", "lsp_server"], stdout=subprocess.DEVNULL if closed == 0 else None,
                              stdin=subprocess.DEVNULL if closed == 1 else None, stderr=subprocess.PIPE, text=True,
                              timeout=60, preexec_fn=lambda fd=closed: os.close(fd))
        which = ("input", "output")[closed]
        assert done.returncode == 1 and f"standard {which} is closed" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("connected", [False, True])
def test_ctrl_c_ends_the_tcp_server_quietly(connected):
    """Ctrl+C in the terminal that started `infill-lsp --tcp`: exit 130, no traceback, also with an editor connected
    (its cancelled connection was logged as three tracebacks)."""
    server = subprocess.Popen([sys.executable, "-m", "lsp_server", "--tcp", "127.0.0.1:0"], stdin=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        listening = server.stderr.readline()
        assert "listening on" in listening
        editor = None
        if connected:
            editor = socket.create_connection(("127.0.0.1", int(listening.rsplit(":", 1)[1])), timeout=60)
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "processId": None, "rootUri": None, "capabilities": {}, "initializationOptions": {"threads": 1}}})
            editor.sendall(f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
            assert b"capabilities" in editor.recv(65536)   # the server answered: the connection is being served
        server.send_signal(signal.SIGINT)
        rest = server.communicate(timeout=60)[1]
        if editor is not None:
            editor.close()
    finally:
        server.kill()
    assert server.returncode == 130 and "Traceback" not in rest, rest


def test_a_script_without_an_extension_takes_its_language_from_its_shebang_or_the_flag(tmp_path):
    """An editor calls `#!/usr/bin/env python3` a Python file; the command line read it as plain text, so it did
    not print what the server would insert for that editor."""
    script = tmp_path / "tool"
    script.write_text("#!/usr/bin/env python3\nimport sys\n\n\ndef main():\n    return \n")
    plain = tmp_path / "notes"
    plain.write_text("def main():\n    return \n")
    text_file = tmp_path / "notes.txt"   # an extension an editor trusts over the #! line
    text_file.write_text(script.read_text())
    # Through the command line for the script and the flag; the choice itself for the rest (each fill loads torch).
    for path, flags in ((script, []), (plain, ["--language", "python"])):
        done = infill_lsp("fill", f"{path}:{path.read_text().count(chr(10))}:12", "--json", *flags, *FAST_FLAGS)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["details"]["language"] == "python", (path, flags)
    from lsp_server.cli import language_for
    assert language_for(plain, plain.read_text(), None) is None               # plain text, as its name says
    assert language_for(text_file, text_file.read_text(), None) is None       # from `.txt`, not the #! line
    assert language_for(Path("tool"), "#!/usr/bin/env -S node --flag\n", None) == "javascript"
    assert language_for(Path("tool"), "#!/usr/bin/python3.12\n", "lua") == "lua"   # the flag wins


def test_the_fill_is_written_in_utf8_whatever_the_consoles_encoding():
    """A console that cannot encode the fill (cp1252 on Windows, a C locale's ASCII): it was a UnicodeEncodeError
    traceback and nothing printed, where the editor would have inserted the text."""
    from lsp_server.cli import write_inserted_text

    for encoding in ("cp1252", "ascii"):
        console = io.TextIOWrapper(io.BytesIO(), encoding=encoding)
        console.write("before ")
        write_inserted_text('name = "你好 😀"', console)
        assert console.buffer.getvalue() == 'before name = "你好 😀"'.encode("utf-8")
    # a caller's text stream without bytes underneath (redirect_stdout to a StringIO) takes the text as it is
    captured = io.StringIO()
    write_inserted_text("名前 = 1", captured)
    assert captured.getvalue() == "名前 = 1"


@pytest.fixture
def tcp_server():
    """`infill-lsp --tcp 127.0.0.1:0`; yields a function that connects to the port its "listening" line names."""
    server = subprocess.Popen([sys.executable, "-m", "lsp_server", "--tcp", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()   # the first line it writes, once the socket is bound
        assert line.startswith("infill-lsp: listening on 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        assert port > 0
        yield lambda: socket.create_connection(("127.0.0.1", port), timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=30)


def frame(message: dict) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


INITIALIZE = {"id": 1, "method": "initialize", "params": {"processId": None, "rootUri": None, "capabilities": {},
                                                         "initializationOptions": FAST_OPTIONS}}


@pytest.mark.parametrize("ending", ["half a message", "reset"])
def test_a_tcp_client_that_drops_the_connection_ends_the_server_quietly(ending):
    """asyncio printed "Unhandled exception in client_connected_cb" and a traceback into the editor's log."""
    server = subprocess.Popen([sys.executable, "-m", "lsp_server", "--tcp", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(server.stderr.readline().rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            if ending == "half a message":
                connection.sendall(b"Content-Length: 100\r\n\r\n{\"jsonrpc\":")
            else:   # a reset (RST) instead of an orderly close, after half a header
                connection.sendall(b"Content-Len")
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        stderr = server.communicate(timeout=60)[1]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0
    assert "Traceback" not in stderr and "Unhandled exception" not in stderr, stderr


def test_tcp_serves_lsp(tcp_server):
    with tcp_server() as connection:
        connection.sendall(frame(INITIALIZE))
        reply = read_message(connection)
    assert reply["id"] == 1
    assert reply["result"]["capabilities"]["inlineCompletionProvider"] is not None


def test_tcp_serves_one_editor_and_a_second_connection_neither_takes_its_answers_nor_ends_it(tcp_server):
    """A port probe or a second editor window: it took over the first editor's answers, and its end ended the
    server."""
    with tcp_server() as editor:
        editor.sendall(frame(INITIALIZE))
        assert read_message(editor)["id"] == 1
        with tcp_server() as second:
            second.sendall(frame({**INITIALIZE, "id": 7}))
            try:
                assert second.recv(4096) == b""   # closed unanswered
            except ConnectionResetError:          # (closed with our message unread)
                pass
        editor.sendall(frame({"id": 2, "method": "workspace/executeCommand",
                              "params": {"command": "infill.status", "arguments": []}}))
        assert "counters" in read_reply(editor, 2)["result"]


def test_a_tcp_line_too_long_for_a_header_is_skipped_as_over_stdio(tcp_server):
    """A line of 100 KB where a header belongs (JSON sent without headers, a Content-Length too short for a large
    file): asyncio's reader refused it, and the server ended with a traceback."""
    with tcp_server() as connection:
        connection.sendall(frame(INITIALIZE))
        assert read_message(connection)["id"] == 1
        connection.sendall(b"x" * 100_000 + b"\r\n")
        connection.sendall(frame({"id": 2, "method": "workspace/executeCommand",
                                  "params": {"command": "infill.status", "arguments": []}}))
        assert "counters" in read_reply(connection, 2)["result"]


def test_tcp_shutdown_and_exit_written_together_end_the_server_with_0():
    """A client that sends `exit` without waiting for the shutdown's answer: both arrive in one read over TCP, and
    the exit was handled before the shutdown was done (exit code 1, the shutdown unanswered)."""
    server = subprocess.Popen([sys.executable, "-m", "lsp_server", "--tcp", "127.0.0.1:0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = int(server.stderr.readline().rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(frame(INITIALIZE))
            assert read_message(connection)["id"] == 1
            connection.sendall(frame({"id": 2, "method": "shutdown"}) + frame({"method": "exit"}))
            assert read_reply(connection, 2)["result"] is None
        assert server.wait(timeout=60) == 0
    finally:
        server.kill()


def test_a_request_before_initialize_is_answered_server_not_initialized(tcp_server):
    """LSP's -32002: it was an internal error with a traceback, which the editor showed the user."""
    with tcp_server() as connection:
        connection.sendall(frame({"id": 5, "method": "textDocument/inlineCompletion", "params": {
            "textDocument": {"uri": "file:///tmp/early.py"}, "position": {"line": 0, "character": 0},
            "context": {"triggerKind": 1}}}))
        early = read_reply(connection, 5)
        connection.sendall(frame(INITIALIZE))
        assert "capabilities" in read_reply(connection, 1)["result"]
    assert early["error"]["code"] == -32002 and "traceback" not in json.dumps(early).lower(), early


def test_tcp_request_reads_the_document_as_it_was_when_the_request_came(tcp_server):
    """Over TCP pygls handles every message already read before a request's handler first runs: an edit sent right
    after the request must not move the request onto the new text (its position would point into other code). The
    request is for text that has changed, so it is dropped like any stale one (counted as cancelled)."""
    uri = "file:///tmp/stale.py"
    with tcp_server() as connection:
        connection.sendall(frame(INITIALIZE))
        assert read_message(connection)["id"] == 1
        connection.sendall(b"".join(frame(message) for message in [
            {"method": "initialized", "params": {}},
            {"method": "textDocument/didOpen", "params": {"textDocument": {
                "uri": uri, "languageId": "python", "version": 1, "text": "x = \n"}}},
            {"id": 2, "method": "textDocument/inlineCompletion", "params": {
                "textDocument": {"uri": uri}, "position": {"line": 0, "character": 4},
                "context": {"triggerKind": 1}}},   # invoked: no debounce
            {"method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"range": {
                    "start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "yy"}]}},
        ]))
        answer = read_reply(connection, 2)
        connection.sendall(frame({"id": 3, "method": "workspace/executeCommand",
                                  "params": {"command": "infill.status", "arguments": []}}))
        status = read_reply(connection, 3)["result"]
    assert answer["result"]["items"] == []
    assert status["counters"]["requests"] == 1 and status["counters"]["cancelled"] == 1, status["counters"]


@pytest.mark.parametrize("ending", ["shutdown", "exit"])
def test_tcp_exit_while_the_model_works_stops_the_worker_and_exits_quietly(ending):
    """Over TCP pygls's sys.exit for `exit` escaped the connection's handler: the model worker was never stopped,
    the process aborted ("terminate called without an active exception", -6) with it inside torch, and every exit
    wrote a traceback."""
    server = subprocess.Popen([sys.executable, "-m", "lsp_server", "--tcp", "127.0.0.1:0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = int(server.stderr.readline().rsplit(":", 1)[1])
        uri = "file:///tmp/tcp-exit.py"
        with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
            slow = {**FAST_OPTIONS, "steps": 256, "maxNewTokens": 512}
            connection.sendall(frame({**INITIALIZE, "params": {**INITIALIZE["params"], "initializationOptions": slow}}))
            assert read_reply(connection, 1)["result"]
            connection.sendall(frame({"method": "initialized", "params": {}}) + frame({
                "method": "textDocument/didOpen", "params": {"textDocument": {
                    "uri": uri, "languageId": "python", "version": 1,
                    "text": "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(40))}}}))
            asked, deadline = 10, time.monotonic() + 60
            while True:   # the model loaded, then a run under way
                asked += 1
                connection.sendall(frame({"id": asked, "method": "workspace/executeCommand",
                                          "params": {"command": "infill.status", "arguments": []}}))
                if read_reply(connection, asked)["result"]["state"] == "ready":
                    break
                assert time.monotonic() < deadline, "the model never loaded"
                time.sleep(0.05)
            connection.sendall(frame({"id": 2, "method": "textDocument/inlineCompletion", "params": {
                "textDocument": {"uri": uri}, "position": {"line": 1, "character": 11},
                "context": {"triggerKind": 1}}}))   # invoked: no debounce, no latency budget
            deadline = time.monotonic() + 60
            while True:
                asked += 1
                connection.sendall(frame({"id": asked, "method": "workspace/executeCommand",
                                          "params": {"command": "infill.metrics", "arguments": []}}))
                if not read_reply(connection, asked)["result"]["idle"]:
                    break
                assert time.monotonic() < deadline, "the model worker never became busy"
            if ending == "shutdown":
                connection.sendall(frame({"id": 3, "method": "shutdown"}))
                assert "error" not in read_reply(connection, 3)
            connection.sendall(frame({"method": "exit"}))
            returncode = server.wait(timeout=60)
        stderr = server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
    assert returncode == (0 if ending == "shutdown" else 1), stderr[-2000:]   # LSP's exit codes, not an abort
    assert "Traceback" not in stderr and "terminate called" not in stderr, stderr[-2000:]


def read_reply(connection: socket.socket, request_id: int) -> dict:
    """The answer to our request `request_id`, passing over the server's notifications."""
    while True:
        message = read_message(connection)
        if message.get("id") == request_id and "method" not in message:
            return message


UNREAD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # bytes received past a connection's last message


def read_message(connection: socket.socket) -> dict:
    """The next message from the server. One recv may hold the end of one message and the start of the next (a
    notification sent with the answer): what is past this message is kept for the next call (it was dropped, and
    a test waited for an answer it had thrown away)."""
    data = UNREAD.pop(connection, b"")
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    header, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in header.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        chunk = connection.recv(4096)
        assert chunk, "the server closed the connection"
        body += chunk
    UNREAD[connection] = body[length:]
    return json.loads(body[:length])


def test_fast_path_option_reaches_the_engine_config_and_a_bad_one_is_defaulted():
    import argparse

    from lsp_server.cli import add_model_options, options_from

    parser = argparse.ArgumentParser()
    add_model_options(parser)
    options, warnings = options_from(parser.parse_args(["--fast-path", "static"]))
    assert not warnings and options.engine_config().fast_path == "static"
    options, warnings = options_from(parser.parse_args(["--fast-path", "warp"]))
    assert options.engine_config().fast_path == "auto" and any("fastPath" in w for w in warnings)


def test_context_tokens_option_sets_the_context_the_model_reads():
    done = infill_lsp("fill", f"{SHAPES}:10:12", "--json", *FAST_FLAGS, "--context-tokens", "96")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["model"]["max_prompt_tokens"] == 96
    context = answer["details"]["context"]
    assert 90 <= context["max_prompt_tokens"] <= 96     # less the FIM sentinels; the model's own would be 192
    assert context["prefix_tokens"] + context["suffix_tokens"] <= context["max_prompt_tokens"]
    done = infill_lsp("fill", f"{SHAPES}:10:12", *FAST_FLAGS, "--context-tokens", "8")
    assert done.returncode == 2 and "--context-tokens 8: expected a whole number of tokens from 64" in done.stderr


def test_a_context_the_model_cannot_hold_is_said_on_stderr():
    """The engine's notes (asked for, not given) were shown by the server but never by the command line."""
    done = infill_lsp("fill", f"{SHAPES}:10:12", *FAST_FLAGS, "--context-tokens", "100000")
    assert done.returncode == 0, done.stderr
    assert "100000 tokens" in done.stderr and "does not fit" in done.stderr
