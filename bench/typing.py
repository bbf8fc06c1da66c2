"""Replay real typing against the language server through a real LSP client, and measure what the user feels.

    python -m bench.typing --json                     # CPU; prefix reuse off, then on, same replay
    python -m bench.typing --function textwrap:indent --device cuda
    python -m bench.typing --context-tokens 1024 --steps 4 --budget-ms 0 --json   # where the prompt pass weighs

Held-back functions of real files (default: two from click, which is held out of the embedded model's training
data) are each removed from their file, and typed back into the document character by character
at 10-20 keys/s (seeded), with pauses of 1-2.5 s at some line ends and word ends. A new line and its indentation
are one keystroke, as an editor's auto-indent makes them. After every keystroke the client sends didChange and an
automatic textDocument/inlineCompletion, as VS Code does, without waiting for the answer; as VS Code does, it
cancels ($/cancelRequest) the previous request if still unanswered, types a bracket or quote that closes on the same
line as the pair (the closer after the cursor) and types the closer over the one already there (`--plain`: one
character a key, nothing cancelled, as runs before 2026-11-25 typed).

Reported per run: time from the last keystroke before a pause to a non-empty answer (p50/p95, over the pauses that
got one before the next key), requests started / cancelled / answered / empty, typed-through and cache hits (from
`infill.status`), model runs per 100 keystrokes (from `infill.metrics`), and the server's peak RSS (VmHWM). The
replay runs once with `reusePrefix` off and once on, each on a fresh server (`--read-ahead compare`: reuse on, with
`readAhead` off and then on). `--plot` writes the latency
distribution as a PNG into bench/. Record what you quote in bench/RESULTS.md with the command, device and date.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import statistics
import sys
import time
import tokenize
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pytest_lsp import ClientServerConfig, client_capabilities

from bench.common import DEFAULT_FUNCTIONS, held_back

SERVER_COMMAND = [sys.executable, "-m", "lsp_server"]
MODEL_READY_S = 300.0
PAUSE_MIN_S = 0.5   # a gap this long counts as a pause (typing gaps are at most 1/10 s)


@dataclass
class Keystroke:
    text: str          # what this key inserts (a new line carries its indentation along)
    pause_after: float  # seconds the typist waits after this key (the gap to the next key)
    closer: str = ""   # what the editor inserts after the cursor with it (an auto-closed bracket or quote)
    overtype: bool = False   # typed over the closer the editor inserted: the change replaces that character


@dataclass
class Replay:
    path: str
    document: str      # the file without the function
    offset: int        # where the function goes
    keys: list[Keystroke]


OPENERS, CLOSERS = "([{", ")]}"


def auto_closed_pairs(source: str) -> dict[int, int]:
    """{offset of an opener: offset of its closer} for the brackets and the one-line strings (triple-quoted ones
    left out) of Python `source` that close on the line they open: the pairs an editor closes as the opener is
    typed (VS Code's autoClosingPairs; a pair over several lines is typed as it stands, its closer after Enter).
    {} when `source` does not tokenize."""
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))

    def offset(row_col: tuple[int, int]) -> int:
        return line_starts[row_col[0] - 1] + row_col[1]

    pairs, open_brackets = {}, []
    try:
        for token in tokenize.generate_tokens(iter(source.splitlines(keepends=True)).__next__):
            name = tokenize.tok_name[token.exact_type]
            if token.type == tokenize.OP and token.string in OPENERS or name == "FSTRING_START":
                open_brackets.append(token)
            elif (token.type == tokenize.OP and token.string in CLOSERS or name == "FSTRING_END") and open_brackets:
                opener = open_brackets.pop()
                if opener.start[0] == token.end[0]:
                    pairs[offset(opener.end) - 1] = offset(token.start)
            elif token.type == tokenize.STRING and token.start[0] == token.end[0]:
                quote = token.string.lstrip("rRbBuUfF")
                if quote[:3] not in ('"""', "'''"):
                    pairs[offset(token.start) + len(token.string) - len(quote)] = offset(token.end) - 1
    except (tokenize.TokenError, SyntaxError):
        return {}
    return pairs


def keystrokes(source: str, seed: int, slow_s: float, fast_s: float, pause_s: tuple[float, float],
               line_pause: float, word_pause: float, auto_close: bool = True) -> list[Keystroke]:
    rng = random.Random(seed)
    keys: list[Keystroke] = []
    pairs = auto_closed_pairs(source) if auto_close else {}
    closers = set(pairs.values())
    i = 0
    while i < len(source):
        closer, overtype = "", i in closers
        if source[i] == "\n":
            j = i + 1
            while j < len(source) and source[j] in " \t":
                j += 1
            text, i = source[i:j], j
            chance = line_pause
        else:
            if i in pairs:
                closer = source[pairs[i]]
            text, i = source[i], i + 1
            chance = word_pause if text == " " else 0.0
        gap = rng.uniform(fast_s, slow_s)
        if rng.random() < chance:
            gap = rng.uniform(*pause_s)
        keys.append(Keystroke(text, gap, closer, overtype))
    keys[-1].pause_after = pause_s[1]  # the end of the function is a pause too
    return keys


@dataclass
class Sent:
    key: int
    sent: float
    answered: float | None = None
    items: int = 0
    error: str | None = None


@dataclass
class RunResult:
    reuse_prefix: bool
    read_ahead: bool
    keystrokes: int
    pauses: int
    pause_latencies_ms: list[float] = field(default_factory=list)
    # "document:pause" -> ms, for the pauses answered with a suggestion: two runs compare on the pauses both answered
    latency_by_pause: dict[str, float] = field(default_factory=dict)
    response_latencies_ms: list[float] = field(default_factory=list)   # any answer in time, empty ones included
    first_pause_ms: list[float | None] = field(default_factory=list)   # each document's first pause: any answer in
                                                                        # time, else None
    pauses_answered_empty: int = 0    # the answer came in time, with nothing to offer
    pauses_too_slow: int = 0          # no answer before the next key (which cancelled it) or the pause's end
    pauses_errored: int = 0           # an error came back in time instead of an answer
    counters: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    load_peak_rss_mb: float | None = None   # the server's peak up to the model being ready
    peak_rss_mb: float | None = None        # its peak while typing (the mark reset once loaded), None if unknown
    wall_s: float = 0.0


def reset_peak_rss(pid: int) -> bool:
    """Start the process's VmHWM afresh from its current size (Linux: 5 into clear_refs), so the replay's peak is
    not the load's, which is higher."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def position_after(text: str) -> types.Position:
    """LSP position (UTF-16) of the end of `text`."""
    line = text.count("\n")
    last = text[text.rfind("\n") + 1:]
    return types.Position(line=line, character=len(last.encode("utf-16-le")) // 2)


def key_change(before: str, key: Keystroke) -> types.TextDocumentContentChangePartial:
    """The didChange an editor sends for `key` typed after `before`: an insertion (with the auto-closed closer),
    or over a closer it inserted, that character replaced by the same one (as VS Code's overtype does)."""
    at = position_after(before)
    end = types.Position(line=at.line, character=at.character + 1) if key.overtype else at
    return types.TextDocumentContentChangePartial(range=types.Range(start=at, end=end), text=key.text + key.closer)


async def replay_once(replays: list[Replay], options: dict, cancel_previous: bool = True) -> RunResult:
    config = ClientServerConfig(server_command=SERVER_COMMAND, server_env={**os.environ, "PYTHONUNBUFFERED": "1"})
    client = await config.start()
    client.feature("diffusionInfill/status")(lambda params: None)   # status notifications: read on demand instead
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"), initialization_options=options))

        async def command(name: str):
            return await client.workspace_execute_command_async(types.ExecuteCommandParams(command=name,
                                                                                           arguments=[]))

        deadline = time.monotonic() + MODEL_READY_S
        while (status := await command("infill.status"))["state"] == "loading":
            if time.monotonic() > deadline:
                raise SystemExit("the model did not load in time")
            await asyncio.sleep(0.2)
        if status["state"] != "ready":
            raise SystemExit(f"the model failed to load: {status['message']}")

        result = RunResult(reuse_prefix=options["reusePrefix"], read_ahead=options["readAhead"], keystrokes=0,
                           pauses=0)
        result.load_peak_rss_mb = peak_rss_mb(client._server.pid)
        peak_is_the_replays = reset_peak_rss(client._server.pid)
        started = time.monotonic()
        for number, replay in enumerate(replays):
            await type_function(client, replay, result, number, cancel_previous)
        result.wall_s = round(time.monotonic() - started, 1)
        result.counters = (await command("infill.status"))["counters"]
        result.metrics = await command("infill.metrics")
        result.peak_rss_mb = peak_rss_mb(client._server.pid) if peak_is_the_replays else None
        await asyncio.wait_for(client.shutdown_session(), 60)
        return result
    finally:
        server = client._server
        if server is not None and server.returncode is None:
            server.kill()
        await client.stop()


async def type_function(client, replay: Replay, result: RunResult, number: int = 0,
                        cancel_previous: bool = True) -> None:
    """Type one held-back function into its document, a request after every key; add what the pauses saw.
    `cancel_previous`: each key cancels the request before it if that is still unanswered, as VS Code does."""
    uri = Path(replay.path).resolve().as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=replay.document)))
    before, after = replay.document[:replay.offset], ""   # after: the closers the editor put after the cursor
    sent: list[Sent] = []
    tasks = []

    def record(entry: Sent):
        def done(future):
            entry.answered = time.monotonic()
            if future.cancelled() or future.exception() is not None:
                entry.error = "cancelled" if future.cancelled() else str(future.exception())
            else:
                entry.items = len(future.result().items) if future.result() else 0
        return done

    version = 1
    next_at = time.monotonic()
    previous_id = None
    for index, key in enumerate(replay.keys):
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if cancel_previous and previous_id is not None and not tasks[-1].done():
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=previous_id))
        version += 1
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[key_change(before, key)]))
        if key.overtype:
            assert after[:1] == key.text, f"typed {key.text!r} over {after[:1]!r}"
            after = after[1:]
        before, after = before + key.text, key.closer + after
        entry = Sent(index, time.monotonic())
        previous_id = str(uuid.uuid4())
        future = client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position_after(before),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)),
            msg_id=previous_id)
        task = asyncio.ensure_future(future)
        task.add_done_callback(record(entry))
        sent.append(entry)
        tasks.append(task)
        next_at = time.monotonic() + key.pause_after
    await asyncio.wait(tasks, timeout=120)
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))

    pause_keys = [i for i, key in enumerate(replay.keys) if key.pause_after >= PAUSE_MIN_S]
    result.keystrokes += len(replay.keys)
    result.pauses += len(pause_keys)
    for n, i in enumerate(pause_keys):
        entry = sent[i]
        # In time: before the next key, or for the last key, within its own pause (as long as any other pause).
        deadline = sent[i + 1].sent if i + 1 < len(sent) else entry.sent + replay.keys[i].pause_after
        in_time = entry.answered is not None and entry.answered <= deadline
        if n == 0:   # one entry per document, None when no answer came in time
            result.first_pause_ms.append(round((entry.answered - entry.sent) * 1e3, 1)
                                         if in_time and not entry.error else None)
        if not in_time:
            result.pauses_too_slow += 1     # a request the next key cancelled lands here too
            continue
        if entry.error:
            result.pauses_errored += 1
            continue
        result.response_latencies_ms.append(round((entry.answered - entry.sent) * 1e3, 1))
        if entry.items == 0:
            result.pauses_answered_empty += 1
        else:
            result.pause_latencies_ms.append(round((entry.answered - entry.sent) * 1e3, 1))
            result.latency_by_pause[f"{number}:{n}"] = result.pause_latencies_ms[-1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def summary(run: RunResult) -> dict:
    c, m = run.counters, run.metrics
    return {
        "reusePrefix": run.reuse_prefix, "readAhead": run.read_ahead, "keystrokes": run.keystrokes, "pauses": run.pauses,
        "pause_to_answer_ms": {"p50": percentile(run.pause_latencies_ms, 50),
                               "p95": percentile(run.pause_latencies_ms, 95),
                               "answered_pauses": len(run.pause_latencies_ms),
                               "pauses_answered_empty": run.pauses_answered_empty,
                               "pauses_too_slow": run.pauses_too_slow,
                               "pauses_errored": run.pauses_errored},
        # Empty answers included: more samples for a weak model, though answers that never reach the model
        # (the cursor in a comment, say) come back quickly in every run.
        "pause_to_any_answer_ms": {"p50": percentile(run.response_latencies_ms, 50),
                                   "p95": percentile(run.response_latencies_ms, 95),
                                   "answered_pauses": len(run.response_latencies_ms)},
        # Where the read-ahead should show: the first pause in a document is the one whose context is unread.
        "first_pause_per_document_ms": run.first_pause_ms,
        "requests": {k: c[k] for k in ("requests", "cancelled", "answered", "empty")},
        "typed_through": c["typedThrough"], "cache_hits": c["cacheHits"], "speculated": c["speculated"],
        "model_runs": m["modelRuns"], "speculative_runs": m["speculativeRuns"], "primed_prompts": m["primedPrompts"],
        "model_runs_per_100_keys": round(100 * m["modelRuns"] / max(1, run.keystrokes), 1),
        # Every time the model worked, speculation and read-ahead encodings included (what the GPU is asked for).
        "all_model_calls_per_100_keys": round(
            100 * (m["modelRuns"] + m["speculativeRuns"] + m["primedPrompts"]) / max(1, run.keystrokes), 1),
        "model_latency_ms": m["modelLatencyMs"], "prefix_reuse": m["prefixReuse"],
        "ms_per_step": m.get("msPerStep"), "per_model_run": m.get("runMeans"),
        "engine": m.get("engine"),   # the device, dtype, fast path and context that ran (options say what was asked)
        "load_peak_rss_mb": run.load_peak_rss_mb, "peak_rss_mb": run.peak_rss_mb, "wall_s": run.wall_s,
        "latencies_ms": run.pause_latencies_ms, "latency_by_pause": run.latency_by_pause,
    }


def setting(run: RunResult) -> str:
    return (f"prefix reuse {'on' if run.reuse_prefix else 'off'}"
            + (f", read-ahead {'on' if run.read_ahead else 'off'}" if run.reuse_prefix else ""))


def plot(runs: list[RunResult], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for run in runs:
        values = sorted(run.pause_latencies_ms)
        if not values:
            continue
        share = [(i + 1) / len(values) for i in range(len(values))]
        label = (f"{setting(run)}: p50 {percentile(values, 50):.0f} ms, "
                 f"p95 {percentile(values, 95):.0f} ms ({len(values)}/{run.pauses} pauses)")
        axis.step(values, share, where="post", label=label)
    axis.set_xlabel("last keystroke of a pause -> non-empty inline answer (ms)")
    axis.set_ylabel("share of answered pauses")
    axis.set_title(title, fontsize=9)
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--function", action="append", help="module:function to type (repeatable; default: "
                        + ", ".join(DEFAULT_FUNCTIONS) + ")")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="the typist's rhythm")
    parser.add_argument("--keys-per-s", type=float, nargs=2, default=(10.0, 20.0), metavar=("SLOW", "FAST"))
    parser.add_argument("--pause", type=float, nargs=2, default=(1.0, 2.5), metavar=("SHORTEST", "LONGEST"),
                        help="pause lengths in seconds (a slow device needs longer pauses to answer at all)")
    parser.add_argument("--budget-ms", type=int, help="the server's inlineBudgetMs (default: the server's own; "
                        "0 = every suggestion runs every step)")
    parser.add_argument("--context-tokens", type=int, help="the server's contextTokens (default: the model's own, "
                        "192 for the embedded model)")
    parser.add_argument("--only", choices=("on", "off"), help="run only one prefix-reuse setting")
    parser.add_argument("--read-ahead", choices=("on", "off", "compare"), default="on",
                        help="the server's readAhead; compare: prefix reuse on, read-ahead off then on")
    parser.add_argument("--reuse-first", action="store_true", help="run prefix reuse on first, then off")
    parser.add_argument("--plain", action="store_true", help="type one character a key with no auto-closed "
                        "brackets or quotes and cancel nothing (how runs before 2026-11-25 typed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", default="", help="PNG path (default: none; the committed figures are named in "
                        "RESULTS.md with the command that made them)")
    args = parser.parse_args()

    functions = args.function or list(DEFAULT_FUNCTIONS)
    replays = []
    for number, function in enumerate(functions):
        path, text, offset, source = held_back(function)
        keys = keystrokes(source, args.seed + number, 1 / args.keys_per_s[0], 1 / args.keys_per_s[1],
                          tuple(args.pause), line_pause=0.4, word_pause=0.04, auto_close=not args.plain)
        replays.append(Replay(path=path, document=text[:offset] + text[offset + len(source):], offset=offset,
                              keys=keys))
    options = {"device": args.device, "maxNewTokens": args.max_new_tokens}
    if args.threads:
        options["threads"] = args.threads
    if args.steps:
        options["steps"] = args.steps
    if args.budget_ms is not None:
        options["inlineBudgetMs"] = args.budget_ms
    if args.context_tokens:
        options["contextTokens"] = args.context_tokens
    settings = {"on": [True], "off": [False]}.get(args.only, [False, True])
    if args.reuse_first:
        settings.reverse()
    if args.read_ahead == "compare":
        plans = [(True, False), (True, True)]
    else:
        plans = [(reuse, args.read_ahead == "on") for reuse in settings]
    runs = [asyncio.run(replay_once(replays, {**options, "reusePrefix": reuse, "readAhead": ahead},
                                    cancel_previous=not args.plain))
            for reuse, ahead in plans]

    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()} {os.cpu_count()} CPUs", "functions": functions,
              "characters": sum(len(k.text) for r in replays for k in r.keys),
              "options": options, "keys_per_s": list(args.keys_per_s), "pause_s": list(args.pause),
              "typing": "plain" if args.plain else "editor (auto-closed pairs, previous request cancelled)",
              "runs": [summary(run) for run in runs]}
    by_ahead = {run.read_ahead: run.pause_latencies_ms for run in runs}
    if args.read_ahead == "compare" and by_ahead.get(False) and by_ahead.get(True):
        for q in (50, 95):
            report[f"p{q}_speedup_with_read_ahead"] = round(percentile(by_ahead[False], q)
                                                           / percentile(by_ahead[True], q), 2)
    by_reuse = {run.reuse_prefix: run.pause_latencies_ms for run in runs}
    if by_reuse.get(False) and by_reuse.get(True):
        report["p50_speedup_with_reuse"] = round(percentile(by_reuse[False], 50) / percentile(by_reuse[True], 50), 2)
    paired = {run.reuse_prefix: run.latency_by_pause for run in runs}
    if paired.get(False) and paired.get(True):
        # The same pauses only: each run's own percentiles leave out the pauses it did not answer in time.
        both = sorted(set(paired[False]) & set(paired[True]))
        report["paired_pauses"] = len(both)
        if both:
            report["paired_p50_speedup_with_reuse"] = round(
                percentile([paired[False][k] for k in both], 50) / percentile([paired[True][k] for k in both], 50), 2)
    responses = {run.reuse_prefix: run.response_latencies_ms for run in runs}
    if responses.get(False) and responses.get(True):
        report["any_answer_p50_speedup_with_reuse"] = round(percentile(responses[False], 50)
                                                            / percentile(responses[True], 50), 2)
    if args.plot:
        try:   # minutes of replay are not lost to the plot (a machine without matplotlib)
            plot(runs, Path(args.plot), f"bench/typing.py: {len(functions)} held-back functions typed at "
                                        f"{args.keys_per_s[0]:.0f}-{args.keys_per_s[1]:.0f} keys/s,\ndevice "
                                        f"{args.device}"
                                        + (f", context {args.context_tokens} tokens" if args.context_tokens else "")
                                        + f", {report['date'][:10]}")
            report["plot"] = args.plot
        except Exception as error:
            report["plot_error"] = f"{type(error).__name__}: {error}"
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for run in report["runs"]:
        latency = run["pause_to_answer_ms"]
        print(f"prefix reuse {'on ' if run['reusePrefix'] else 'off'}, read-ahead {'on ' if run['readAhead'] else 'off'}: pause->answer p50 {latency['p50']} ms, "
              f"p95 {latency['p95']} ms ({latency['answered_pauses']}/{run['pauses']} pauses answered); "
              f"requests {run['requests']}; typed-through {run['typed_through']}, cache hits {run['cache_hits']}; "
              f"{run['model_runs_per_100_keys']} model runs/100 keys; peak RSS {run['load_peak_rss_mb']} MB loading, "
              f"{run['peak_rss_mb']} MB typing")
    if "p50_speedup_with_reuse" in report:
        print(f"p50 speedup with prefix reuse: {report['p50_speedup_with_reuse']}x (on the "
              f"{report.get('paired_pauses', 0)} pauses both answered: {report.get('paired_p50_speedup_with_reuse')}x)")


if __name__ == "__main__":
    main()
