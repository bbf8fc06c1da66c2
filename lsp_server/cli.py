"""`infill-lsp`: serve LSP (stdio or TCP), or print one completion with `infill-lsp fill FILE:LINE:COL`, or one
rewrite of a range with `infill-lsp rewrite FILE:L1:C1-L2:C2`.

`fill` and `rewrite` go through the same pieces as the server (options -> ModelHost -> run_infill), so what they
print is what the editor would be offered. Lines and columns are 1-based like compiler messages; a column counts
characters.
"""
from __future__ import annotations

import argparse
import codecs
import gc
import ipaddress
import json
import logging
import os
import re
import stat
import sys
import time
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, TextIO

from .config import CHECKS, ServerOptions, parse_options

if TYPE_CHECKING:
    from .positions import Snapshot

LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)(?:-(?P<line2>\d+):(?P<col2>\d+))?$", re.ASCII)
LSP_MAX = 2**31 - 1   # the largest line or character LSP's positions hold


class UsageError(Exception):
    """A problem with what the user asked for: printed on stderr, exit code 1."""


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", help="local model folder or hub id (default: the embedded model)")
    group.add_argument("--allow-download", action="store_true", help="allow fetching a hub model")
    group.add_argument("--trust-remote-code", action="store_true",
                       help="allow the model's own Python code (from the hub or its folder) to run")
    group.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    group.add_argument("--dtype", help="auto | float32 | bfloat16 | float16")
    group.add_argument("--quantize", help="none | int8 | int4: store the weights as 8- or 4-bit integers (less memory, "
                                          "slightly different completions)")
    group.add_argument("--threads", type=int, help="CPU threads for torch (default: half the cores, at most 4, for a small "
                                                   "model; else PyTorch's own default)")
    group.add_argument("--steps", type=int, help="denoising steps per canvas (default 48 on a GPU, 24 on a CPU)")
    group.add_argument("--max-new-tokens", type=int, help="longest inline completion, in tokens (default 48; "
                       "a fill of a range may write twice the range's size, at most 512)")
    group.add_argument("--seed", type=int)
    group.add_argument("--context-tokens", type=int, help="context tokens the model reads (default: the model's "
                                                          "own, 192 for the embedded model)")
    group.add_argument("--fast-path", help="auto | compiled | static | off: the compiled static-shape decoder step "
                                           "(auto: on with CUDA, off on a CPU)")


# The command line's flag for each option the model options above set.
FLAGS = {"model": "--model", "device": "--device", "dtype": "--dtype", "quantize": "--quantize",
         "threads": "--threads", "steps": "--steps", "maxNewTokens": "--max-new-tokens", "seed": "--seed",
         "fastPath": "--fast-path", "contextTokens": "--context-tokens"}


def given_options(args: argparse.Namespace) -> dict:
    """The model options given on the command line, by the server's names."""
    given = {name: getattr(args, flag[2:].replace("-", "_")) for name, flag in FLAGS.items()}
    given.update(allowDownload=args.allow_download or None, trustRemoteCode=args.trust_remote_code or None)
    return {name: value for name, value in given.items() if value is not None}


def bad_flags(args: argparse.Namespace) -> list[str]:
    """The model options given a value the server would not take, as `--flag VALUE: expected ...`."""
    return [f"{FLAGS[name]} {value}: expected {CHECKS[name][1]}" for name, value in given_options(args).items()
            if name in FLAGS and not CHECKS[name][0](value.strip() if name == "model" else value)]


def options_from(args: argparse.Namespace) -> tuple[ServerOptions, list[str]]:
    return parse_options(given_options(args))


def parse_location(spec: str) -> tuple[Path, tuple[int, int], tuple[int, int] | None]:
    """FILE:LINE:COL or FILE:L1:C1-L2:C2 (1-based); the file name may itself contain colons."""
    match = LOCATION.match(spec)
    if not match:
        raise UsageError(f"expected FILE:LINE:COL or FILE:L1:C1-L2:C2 (1-based), got '{spec}'")
    start = int(match["line"]), int(match["col"])
    end = (int(match["line2"]), int(match["col2"])) if match["line2"] else None
    if min(start + (end or (1, 1))) < 1:
        raise UsageError(f"lines and columns start at 1, got '{spec}'")
    return Path(match["file"]), start, end


def read_source(path: Path) -> tuple[str, int]:
    """(the file's text, 1 if a byte-order mark was dropped from its start else 0)."""
    from infill.pipeline import MAX_DOCUMENT_BYTES

    too_large = f"{path} is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB: nothing to complete"
    try:
        found = path.stat()
        if not stat.S_ISREG(found.st_mode):
            raise UsageError(f"not a regular file: {path}")
        # Sized before it is read (or the model loaded): a file of gigabytes would be read whole only to be refused.
        if found.st_size > MAX_DOCUMENT_BYTES + len(codecs.BOM_UTF8):
            raise UsageError(too_large)
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except OSError as exc:   # a folder on the way that cannot be read, a symlink loop, ...
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) - len(codecs.BOM_UTF8) * data.startswith(codecs.BOM_UTF8) > MAX_DOCUMENT_BYTES:
        raise UsageError(too_large)   # the mark's three bytes are allowed over the limit, nothing else
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UsageError(f"{path} is UTF-16 text; save it as UTF-8 to complete it")
    if b"\x00" in data:
        raise UsageError(f"{path} looks binary (it contains NUL bytes); nothing to complete")
    try:
        # utf-8-sig: a byte-order mark is not text; kept, it would shift every column of line 1 and be read as
        # code. (Nothing is written back; the JSON's offsets count it again.)
        return data.decode("utf-8-sig"), int(data.startswith(codecs.BOM_UTF8))
    except UnicodeDecodeError as exc:   # its position counts from after the mark
        at = exc.start + len(codecs.BOM_UTF8) * data.startswith(codecs.BOM_UTF8)
        raise UsageError(f"{path} is not valid UTF-8 ({exc.reason} at byte {at})") from None


def offset_in(snap: Snapshot, path: Path, line: int, col: int) -> int:
    from lsprotocol import types

    from infill.style import LINE_BREAK

    from .positions import line_span

    # A column past the line's end is a typo here, not the LSP rule of falling back to the line's end.
    # Beyond LSP's range nothing can be there anyway (the file is at most 2 MB): held at its end, not a traceback.
    offset = snap.offset_of(types.Position(line=min(line - 1, LSP_MAX), character=min(col - 1, LSP_MAX)),
                            clamp_to_line_end=False)
    if offset is None:
        span = line_span(snap.source, min(line - 1, LSP_MAX))
        if span is not None:
            raise UsageError(f"{path}:{line}:{col} is past the end of line {line} (its last column is "
                             f"{span[1] - span[0] + 1})")
        lines = len(LINE_BREAK.findall(snap.source)) + 1   # as an editor counts them: LSP's line breaks
        raise UsageError(f"{path}:{line}:{col} is outside the file (it has {lines} line{'s' * (lines != 1)})")
    return offset


# The interpreter a #! line names -> the language id an editor gives such a file (VS Code reads the line too).
SHEBANG_LANGUAGES = {"python": "python", "node": "javascript", "nodejs": "javascript", "lua": "lua",
                     "luajit": "lua"}


def shebang_language(text: str) -> str | None:
    """The language id of a script without an extension, from its #! line (`#!/usr/bin/env python3`)."""
    first = text.split("\n", 1)[0]
    if not first.startswith("#!"):
        return None
    words = first[2:].split()
    if words and PurePath(words[0]).name == "env":   # env [-S] [VAR=value ...] program
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    program = PurePath(words[0]).name if words else ""
    return SHEBANG_LANGUAGES.get(re.sub(r"[\d.]+$", "", program))


def language_for(path: Path, text: str, flag: str | None) -> str | None:
    """The language id an editor would give the file (None: from its extension, later): the --language flag, else
    the #! line, but only for a name without an extension (an editor keeps `notes.txt` plain text whatever it
    holds)."""
    return flag or (shebang_language(text) if not path.suffix else None)


def run_fill(args: argparse.Namespace) -> int:
    # A one-shot process: while torch and transformers import, the garbage collector walks their millions of new
    # objects again and again and frees nothing (about 0.75 s of a cold fill here, bench/RESULTS.md). It is back on
    # once the model is loaded.
    gc.disable()
    try:
        return fill_once(args)
    finally:
        gc.enable()


def fill_once(args: argparse.Namespace) -> int:
    # Imported here, not at the top: a usage error (a bad flag, address or log file) is said without lsprotocol's
    # third of a second.
    from lsprotocol import types
    from pygls.workspace import PositionCodec

    from infill import InfillRequest

    from .model_host import ModelHost
    from .positions import Snapshot

    path, start_at, end_at = parse_location(args.location)
    if args.rewrite and not end_at:   # told before the file is read or the model loads
        raise UsageError(f"rewrite needs a range, FILE:L1:C1-L2:C2, got '{args.location}'")
    text, mark = read_source(path)
    # Columns count characters (UTF-32 code units), as a person counts them in a terminal.
    snap = Snapshot(uri=path.resolve().as_uri(), source=text, path=str(path),
                    codec=PositionCodec(types.PositionEncodingKind.Utf32))
    start = offset_in(snap, path, *start_at)
    end = offset_in(snap, path, *end_at) if end_at else start
    if end < start:
        raise UsageError(f"the range in '{args.location}' ends before it starts")
    if end_at and end == start:   # told before the model loads, not after
        raise UsageError(f"the range in '{args.location}' is empty: "
                         + ("nothing to rewrite" if args.rewrite else "give FILE:LINE:COL for a completion there"))
    options, warnings = options_from(args)
    for warning in warnings:
        print(f"infill-lsp: {warning}", file=sys.stderr)

    started = time.perf_counter()
    host = ModelHost()
    # Closed whatever happens (Ctrl+C included): the worker must leave torch before the interpreter shuts down,
    # or the process aborts.
    try:
        host.load(options.engine_config()).result()
        gc.enable()
        if host.error:
            raise UsageError(host.error)
        for note in host.engine.notes:   # what was asked for and not given (the server shows these as warnings)
            print(f"infill-lsp: {note}", file=sys.stderr)
        loaded = time.perf_counter()
        mode = "rewrite" if args.rewrite else "fill" if end_at else "inline"
        language_id = language_for(path, text, args.language)
        request = InfillRequest(text=text, mode=mode, start=start, end=end, path=str(path), language_id=language_id,
                                max_new_tokens=options.maxNewTokens, invoked=True,   # as an explicit request
                                instruction=args.instruction)
        result = host.run_blocking(request)
        finished = time.perf_counter()
    finally:
        host.close()
    if result.message:   # an explicit request's empty answer says why (infill.pipeline.nothing_offered)
        print(f"infill-lsp: {result.message}", file=sys.stderr)

    timings = {"load_ms": (loaded - started) * 1e3, "infill_ms": (finished - loaded) * 1e3}
    timings.update(result.details.get("timings", {}))
    try:
        print_answer(args, str(path), mode, result, text[end:result.end], snap, mark, timings, host.engine.describe())
    except BrokenPipeError:
        raise
    except OSError as exc:   # a full disk, an I/O error: said on stderr, not as a traceback
        raise UsageError(f"cannot write the output: {exc.strerror or exc}") from exc
    return 0


def print_answer(args: argparse.Namespace, file: str, mode: str, result, replaced_tail: str, snap: Snapshot,
                 mark: int, timings: dict, model: dict) -> None:
    """The answer on stdout: the text alone, or with --json the object with its range, edits and timings."""
    if args.json:
        def located(start: int, end: int) -> dict:
            # 1-based, like the input; "offsets" are Python str offsets into the file's text as UTF-8 decodes it
            # (a byte-order mark counts as one character).
            where = snap.range_of(start, end)
            return {"start": {"line": where.start.line + 1, "column": where.start.character + 1},
                    "end": {"line": where.end.line + 1, "column": where.end.character + 1},
                    "offsets": [start + mark, end + mark]}

        print(json.dumps({
            "file": file, "mode": mode, "text": result.text, "range": located(result.start, result.end),
            # what the editor's command applies: the smallest changes turning the range's text into "text"
            "edits": [{"range": located(a, b), "newText": new} for a, b, new in result.edits],
            "message": result.message, "timings": timings,
            "details": {k: v for k, v in result.details.items() if k != "timings"},
            "model": model,
        }, indent=1, default=str), flush=True)   # (flushed here: a write error at exit would be a traceback)
    else:
        write_inserted_text(result.text, sys.stdout)
        if mode == "inline" and replaced_tail:   # the item's range covers an auto-closed tail it writes again
            print(f"\ninfill-lsp: the text replaces {replaced_tail!r} after the point (see --json's range)",
                  file=sys.stderr)


def write_inserted_text(text: str, stdout: TextIO) -> None:
    """Exactly what the editor would insert: in UTF-8, as the file was read (a console's encoding, cp1252 or a C
    locale's ASCII, cannot write every character: it raised), and no newline of our own."""
    binary = getattr(stdout, "buffer", None)
    if binary is None:   # a text-only stream (a caller's StringIO): it takes any character
        stdout.write(text)
        return
    stdout.flush()
    binary.write(text.encode("utf-8"))
    binary.flush()


class FillParser(argparse.ArgumentParser):
    """argparse's usage errors (exit 2), with --json also as the JSON object a script waits for: before, a bad flag
    printed nothing on stdout while every other failure printed {location, error, exit_code}."""

    def __init__(self, argv: list[str], **kwargs):
        super().__init__(**kwargs)
        self.argv = argv

    @property
    def json_wanted(self) -> bool:
        return "--json" in map(self.option_named, self.argv)

    def option_named(self, arg: str) -> str:
        """The option an argument names, as argparse reads it: `--ste` is `--steps` when no other option starts so."""
        if not arg.startswith("--") or "=" in arg:
            return arg
        names = [name for action in self._actions for name in action.option_strings]
        if arg in names:
            return arg
        starting = [name for name in names if name.startswith(arg)]
        return starting[0] if len(starting) == 1 else arg

    def location(self) -> str | None:
        """The first argument that is neither an option nor an option's value (`--steps 0 f.py:1:1`: f.py)."""
        takes_value = {name for action in self._actions for name in action.option_strings if action.nargs != 0}
        arguments = iter(self.argv)
        for arg in arguments:
            if arg == "--":
                return next(arguments, None)
            if arg.startswith("-") and arg != "-":
                if self.option_named(arg) in takes_value:   # (`--steps=0` carries its value)
                    next(arguments, None)
                continue
            return arg
        return None

    def error(self, message: str):
        if self.json_wanted:
            print(json.dumps({"location": self.location(), "error": message, "exit_code": 2}, indent=1))
        super().error(message)


def fill_main(argv: list[str], rewrite: bool = False) -> int:
    if rewrite:
        parser = FillParser(
            argv,
            prog="infill-lsp rewrite",
            description="Print exactly the text the language server's rewrite-selection command would put in place "
                        "of FILE:L1:C1-L2:C2 (lines and columns 1-based, columns in characters): the range is the "
                        "model's starting canvas, partly renoised and denoised again. The file is not changed.")
        parser.add_argument("location", help="FILE:L1:C1-L2:C2")
        parser.add_argument("--instruction", help="free text for the rewrite (what the editor's command passes)")
    else:
        parser = FillParser(
            argv,
            prog="infill-lsp fill",
            description="Print exactly the text the language server would insert at FILE:LINE:COL, or the text it "
                        "would put in place of FILE:L1:C1-L2:C2 (lines and columns 1-based, columns in "
                        "characters). A completion that writes again the closers after the point (`)` typed by the "
                        "editor) replaces them: stderr says so, and --json gives the range.")
        parser.add_argument("location", help="FILE:LINE:COL or FILE:L1:C1-L2:C2")
    parser.set_defaults(rewrite=rewrite, instruction=None)
    parser.add_argument("--language", metavar="ID",
                        help="the file's language as an editor names it (python, javascript, typescriptreact, go, "
                             "...); by default from the file's extension, else from its #! line")
    parser.add_argument("--json", action="store_true", help="print a JSON object with text, range, timings, details")
    parser.add_argument("--log-file", help="write the log here")
    add_model_options(parser)
    args = parser.parse_args(argv)
    if problems := bad_flags(args):   # one answer asked for: a wrong option is the user's to fix first
        parser.error("; ".join(problems))
    configure_logging(parser, args.log_file)
    if not args.log_file:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(WithoutTraceback())
    if sys.stdout is None:
        print(f"{parser.prog}: standard output is closed: nowhere to print the completion", file=sys.stderr)
        return 1
    try:
        return run_fill(args)
    except BrokenPipeError:
        # The reader went away (`| head -c1`): nothing left to say, and Python would say it again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141   # as a shell reports a process ended by SIGPIPE
    except UsageError as exc:
        return failed(args, str(exc), 1)
    except KeyboardInterrupt:
        return failed(args, "interrupted", 130)   # as a shell reports a Ctrl+C


def failed(args: argparse.Namespace, message: str, code: int) -> int:
    """The message on stderr; with --json, also the JSON object a script waits for, with "error" instead of "text"."""
    print(f"infill-lsp {'rewrite' if args.rewrite else 'fill'}: {message}", file=sys.stderr)
    if args.json:
        try:
            print(json.dumps({"location": args.location, "error": message, "exit_code": code}, indent=1))
        except (OSError, ValueError):   # stdout went away, was closed or cannot be written: stderr said it
            pass
    return code


def configure_logging(parser: argparse.ArgumentParser, log_file: str | None,
                      format: str = logging.BASIC_FORMAT) -> None:
    """Warnings to stderr, or everything from INFO up to `log_file`; a file that cannot be opened is a usage error."""
    try:
        logging.basicConfig(filename=log_file, level=logging.INFO if log_file else logging.WARNING, format=format)
    except OSError as exc:
        parser.error(f"cannot write the log file {log_file}: {exc.strerror or exc}")


class WithoutTraceback(logging.Formatter):
    """The record's message alone: on a terminal, what failed is said in one line (the user's error message follows),
    and a traceback belongs in --log-file."""

    def format(self, record: logging.LogRecord) -> str:
        return f"infill-lsp: {record.getMessage()}"


def tcp_address(parser: argparse.ArgumentParser, spec: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT (this machine) as (host, port); port 0 lets the system pick one."""
    host, _, port = spec.rpartition(":")
    if not (port.isascii() and port.isdigit()) or not 0 <= int(port) < 65536:
        parser.error(f"--tcp expects HOST:PORT with a port from 0 (any free one) to 65535, got '{spec}'")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    # The system reads a short dotted number its own way (1.2.3 is 1.2.0.3, 10.1 is 10.0.0.1, 0x7f000001 is
    # 127.0.0.1): take only the four-part decimal form, so the server listens where the user meant or says why not.
    numeric = all(part.isdigit() or part.lower().startswith("0x") for part in host.split(".")) and host != ""
    try:
        if numeric or ":" in host or bracketed:
            address = ipaddress.ip_address(host)
            if bracketed and address.version != 6:   # (brackets hold an IPv6 address, and nothing else)
                parser.error(f"--tcp: brackets hold an IPv6 address, got '[{host}]' (write IPv4 without them)")
    except ValueError:
        parser.error(f"--tcp: '{host}' is not an IP address (write IPv4 as four numbers, IPv6 in brackets)")
    try:
        host.encode("idna")   # (a name with an empty or over-long label failed deep inside asyncio)
    except UnicodeError:
        parser.error(f"--tcp: '{host}' is not a host name (empty or over-long part between dots)")
    return host or "127.0.0.1", int(port)


def serve_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="infill-lsp",
        description="Diffusion Infill language server, LSP over stdio by default. "
                    "`infill-lsp fill FILE:LINE:COL` prints one completion instead, `infill-lsp rewrite "
                    "FILE:L1:C1-L2:C2` one rewrite of a range.")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="serve over TCP instead of stdio")
    parser.add_argument("--log-file", help="write the server log here (stdout is the protocol channel)")
    add_model_options(parser)
    args = parser.parse_args(argv)
    tcp = tcp_address(parser, args.tcp) if args.tcp else None
    configure_logging(parser, args.log_file, "%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # at INFO it logs every message body
    from .server import server

    # Command-line options are the starting point; the editor's initializationOptions refine them.
    server.options, server.option_warnings = options_from(args)
    server.startup_options = server.options
    if tcp:
        try:
            server.start_tcp(*tcp)
        except OSError as exc:   # the port is taken, the host is not this machine's, ...
            parser.exit(1, f"infill-lsp: cannot listen on {args.tcp}: {exc.strerror or exc}\n")
        except KeyboardInterrupt:   # Ctrl+C in the terminal that started it: ended, as the stdio server ends
            return 130
        return 0
    for name in ("stdin", "stdout"):
        if getattr(sys, name) is None:   # started with it closed (`infill-lsp <&-`): no channel to speak on
            parser.exit(1, f"infill-lsp: standard {name.removeprefix('std')}put is closed: the protocol runs over "
                           "stdin and stdout (or use --tcp HOST:PORT)\n")
    # stdout carries the protocol: keep the real one for pygls, and send any stray print() to stderr.
    protocol_out = sys.stdout.buffer
    sys.stdout = sys.stderr
    server.start_io(sys.stdin.buffer, protocol_out)
    return server.protocol.exit_code   # (pygls's stdio loop swallows the SystemExit that carries it)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fill"]:
        sys.exit(fill_main(argv[1:]))
    if argv[:1] == ["rewrite"]:
        sys.exit(fill_main(argv[1:], rewrite=True))
    sys.exit(serve_main(argv))
