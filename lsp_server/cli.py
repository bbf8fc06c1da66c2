"""`infill-lsp`: serve LSP (stdio or TCP), or `infill-lsp fill FILE:LINE:COL` to print one completion."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from infill import InfillRequest

from .config import ServerOptions, parse_options


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="local model folder or hub id (default: the embedded model)")
    parser.add_argument("--allow-download", action="store_true", help="allow fetching a hub model")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--dtype", default=None, help="auto | float32 | bfloat16 | float16")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 48)")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)


def options_from(args: argparse.Namespace) -> tuple[ServerOptions, list[str]]:
    raw = {"model": args.model, "allowDownload": args.allow_download or None,
           "trustRemoteCode": args.trust_remote_code or None, "device": args.device, "dtype": args.dtype,
           "steps": args.steps, "maxNewTokens": args.max_new_tokens, "seed": args.seed}
    return parse_options({k: v for k, v in raw.items() if v is not None})


def parse_location(spec: str) -> tuple[Path, int, int]:
    """FILE:LINE:COL, 1-based; the file name may itself contain colons."""
    try:
        path, line, col = spec.rsplit(":", 2)
        line_no, col_no = int(line), int(col)
    except ValueError:
        raise SystemExit(f"infill-lsp fill: expected FILE:LINE:COL (1-based), got '{spec}'") from None
    if line_no < 1 or col_no < 1:
        raise SystemExit(f"infill-lsp fill: LINE and COL start at 1, got {line_no}:{col_no}")
    return Path(path), line_no, col_no


def offset_at(text: str, line: int, col: int) -> int | None:
    """str offset of a 1-based line and column (columns count characters), None when outside the text."""
    lines = text.split("\n")
    if line > len(lines) or col - 1 > len(lines[line - 1].rstrip("\r")):
        return None
    return sum(len(item) + 1 for item in lines[:line - 1]) + col - 1


def read_source(path: Path) -> str:
    if not path.is_file():
        raise SystemExit(f"infill-lsp fill: no such file: {path}")
    data = path.read_bytes()
    if b"\x00" in data:
        raise SystemExit(f"infill-lsp fill: {path} looks binary (NUL bytes); nothing to complete")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SystemExit(f"infill-lsp fill: {path} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def run_fill(args: argparse.Namespace) -> int:
    from .model_host import ModelHost

    path, line, col = parse_location(args.location)
    text = read_source(path)
    offset = offset_at(text, line, col)
    if offset is None:
        raise SystemExit(f"infill-lsp fill: {line}:{col} is outside {path}")
    options, warnings = options_from(args)
    for warning in warnings:
        print(f"infill-lsp: {warning}", file=sys.stderr)
    started = time.perf_counter()
    host = ModelHost()
    host.load(options.engine_config()).result()
    if host.error:
        print(f"infill-lsp: {host.error}", file=sys.stderr)
        return 1
    loaded = time.perf_counter()
    request = InfillRequest(text=text, mode="inline", start=offset, end=offset, path=str(path),
                            max_new_tokens=options.maxNewTokens)
    result = host.run_blocking(request)
    finished = time.perf_counter()
    if result.message:
        print(f"infill-lsp: {result.message}", file=sys.stderr)
    if args.json:
        print(json.dumps({
            "file": str(path), "line": line, "column": col, "text": result.text,
            "range": {"start": result.start, "end": result.end},
            "timings": {"load_ms": (loaded - started) * 1e3, "fill_ms": (finished - loaded) * 1e3,
                        **result.details.get("timings", {})},
            "details": {k: v for k, v in result.details.items() if k != "timings"},
            "model": host.engine.describe(), "message": result.message,
        }, indent=1, default=str))
    else:
        sys.stdout.write(result.text + ("\n" if result.text and not result.text.endswith("\n") else ""))
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fill"]:
        parser = argparse.ArgumentParser(prog="infill-lsp fill",
                                         description="Print what the server would insert at FILE:LINE:COL.")
        parser.add_argument("location", help="FILE:LINE:COL, 1-based like compiler messages")
        parser.add_argument("--json", action="store_true", help="print JSON with range, timings and details")
        add_model_options(parser)
        args = parser.parse_args(argv[1:])
        logging.basicConfig(level=logging.WARNING)
        sys.exit(run_fill(args))

    parser = argparse.ArgumentParser(prog="infill-lsp", description="Diffusion Infill language server (LSP over "
                                     "stdio by default). `infill-lsp fill FILE:LINE:COL` prints one completion.")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="serve one TCP connection instead of stdio")
    parser.add_argument("--log-file", help="write the server log here (stdout is the protocol channel)")
    add_model_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(filename=args.log_file, level=logging.INFO if args.log_file else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from .server import server

    # Command-line model options are the starting point; initializationOptions from the editor override them.
    server.options, server.option_warnings = options_from(args)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io()
