"""User options (command line, initializationOptions, settings section "diffusionInfill") as a defaulted dataclass.

A bad value is reported and replaced by its default; it never stops the server."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from engine.types import QUANTIZE_FORMATS, EngineConfig

SECTION = "diffusionInfill"
DTYPES = ("auto", "float32", "bfloat16", "float16")
FAST_PATHS = ("auto", "compiled", "static", "off")
COMPLETION_ITEMS = ("auto", "on", "off")
RELATED_FILES = ("auto", "on", "off")
MIN_CONTEXT_TOKENS, MAX_CONTEXT_TOKENS = 64, 262_144   # the largest: the 26B-A4B's position limit
RELATED_FILES_MIN_CONTEXT = 1024   # context tokens a model reads before snippets of other files are worth a share


@dataclass(frozen=True)
class ServerOptions:
    model: str | None = None          # local folder or hub id; None = the embedded model in models/
    allowDownload: bool = False       # hub ids load only when the user allows it
    trustRemoteCode: bool = False
    device: str = "auto"              # auto | cpu | cuda | cuda:N
    dtype: str = "auto"               # auto | float32 | bfloat16 | float16
    quantize: str = "none"            # none | int8 | int4: weight-only, so a large model fits a smaller GPU
    threads: int | None = None        # CPU threads; None = half the cores (max 4) for a small model, else torch's default
    maxNewTokens: int = 48
    steps: int | None = None          # denoising steps per canvas; None = the engine's (48 GPU, 24 CPU)
    seed: int = 0
    reusePrefix: bool = True          # keep the encoder cache of the unchanged prompt prefix between requests
    speculate: bool = True            # compute the next suggestion ahead, as if the shown one were accepted
    readAhead: bool = True            # encode the context where the user starts typing, before they pause
                                      # (needs reusePrefix: only the encoder cache carries it to the request)
    fastPath: str = "auto"            # auto (compiled on CUDA, plain on CPU) | compiled | static | off
    inlineBudgetMs: int = 150         # model time an automatic suggestion may take (its steps are planned to fit);
                                      # 0 = no limit. An explicit invoke and the commands always run every step.
    completionItems: str = "auto"     # also answer textDocument/completion with the suggestion: on | off | auto
                                      # (auto: only for clients that do not announce inline completion)
    relatedFiles: str = "auto"        # snippets of other open files in the context: on | off | auto (auto: when
                                      # the model reads at least RELATED_FILES_MIN_CONTEXT tokens of context)
    contextTokens: int | None = None  # context tokens the model reads (prefix, suffix, snippets); None = the
                                      # model's own (192 for the embedded model, else 4,096; the static
                                      # and compiled fast paths keep it within the sliding window)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(model=self.model, device=self.device, dtype=self.dtype, quantize=self.quantize,
                            allow_download=self.allowDownload, trust_remote_code=self.trustRemoteCode,
                            max_steps=self.steps, seed=self.seed, threads=self.threads,
                            reuse_prefix=self.reusePrefix, fast_path=self.fastPath,
                            max_prompt_tokens=self.contextTokens)

    def model_key(self) -> tuple:
        """Everything that needs a new engine when it changes: the weights, where they run, the compiled step."""
        return (self.model, self.allowDownload, self.trustRemoteCode, self.device, self.dtype, self.quantize,
                self.threads, self.fastPath, self.contextTokens)

    def sampling_key(self) -> tuple:
        """What the loaded engine takes between runs (InfillEngine.retune), without a reload."""
        return (self.steps, self.seed, self.reusePrefix)


def _is_int(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_device(value) -> bool:
    if not isinstance(value, str):
        return False
    index = value[5:] if value.startswith("cuda:") else None
    # ASCII digits of a plausible index: torch refuses "cuda:٣" and an index past its integer type
    return value in ("auto", "cpu", "cuda", "mps") or (
        index is not None and index.isascii() and index.isdigit() and int(index) < 1024)


# name -> (check, what a valid value looks like); None is accepted where the field's default is None.
CHECKS = {
    "model": (lambda v: isinstance(v, str) and v.strip() != "", "a folder or hub id"),
    "allowDownload": (lambda v: isinstance(v, bool), "true or false"),
    "trustRemoteCode": (lambda v: isinstance(v, bool), "true or false"),
    "device": (_is_device, "auto, cpu, cuda, cuda:N or mps"),
    "dtype": (lambda v: v in DTYPES, " / ".join(DTYPES)),
    "quantize": (lambda v: v in QUANTIZE_FORMATS, " / ".join(QUANTIZE_FORMATS)),
    "threads": (lambda v: _is_int(v, 1, 1024), "a whole number from 1"),
    "maxNewTokens": (lambda v: _is_int(v, 1, 512), "a whole number from 1 to 512"),
    "steps": (lambda v: _is_int(v, 1, 256), "a whole number from 1 to 256"),
    # (JSON numbers past 2**53 reach a JavaScript client, and VS Code's settings, rounded)
    "seed": (lambda v: _is_int(v, 0, 2**53 - 1), "a whole number from 0 to 2**53 - 1"),
    "reusePrefix": (lambda v: isinstance(v, bool), "true or false"),
    "speculate": (lambda v: isinstance(v, bool), "true or false"),
    "readAhead": (lambda v: isinstance(v, bool), "true or false"),
    "fastPath": (lambda v: v in FAST_PATHS, " / ".join(FAST_PATHS)),
    "inlineBudgetMs": (lambda v: _is_int(v, 0, 60_000), "a whole number of milliseconds from 0 (0 = no limit)"),
    "completionItems": (lambda v: v in COMPLETION_ITEMS, " / ".join(COMPLETION_ITEMS)),
    "relatedFiles": (lambda v: v in RELATED_FILES, " / ".join(RELATED_FILES)),
    "contextTokens": (lambda v: _is_int(v, MIN_CONTEXT_TOKENS, MAX_CONTEXT_TOKENS),
                      f"a whole number of tokens from {MIN_CONTEXT_TOKENS} to {MAX_CONTEXT_TOKENS:,}"),
}


def parse_options(raw, base: ServerOptions | None = None,
                  defaults: ServerOptions | None = None) -> tuple[ServerOptions, list[str]]:
    """(options, warnings). `raw` is the section itself or an object holding it under "diffusionInfill".

    Values not mentioned keep `base`; null puts an option back to its default; a bad value falls back to the
    default, with a warning. `defaults` are the options the server started with (its command line); without
    them, the built-in ones."""
    base = base or ServerOptions()
    if raw is None:
        return base, []
    if not isinstance(raw, dict):
        return base, [f"{SECTION} settings must be an object, not {type(raw).__name__}; they were ignored"]
    if SECTION in raw:
        raw = raw[SECTION]
        if raw is None:
            return base, []
        if not isinstance(raw, dict):
            return base, [f"{SECTION} settings must be an object, not {type(raw).__name__}; they were ignored"]
    fallback = {f.name: getattr(defaults or ServerOptions(), f.name) for f in fields(ServerOptions)}
    warnings, values = [], {}
    for name, value in raw.items():
        if name not in CHECKS:
            warnings.append(f"unknown option {SECTION}.{name} was ignored")
            continue
        if name == "model" and isinstance(value, str):
            # A space pasted around a path is not part of it; an empty settings box means "the default model".
            value = value.strip() or None
        check, expected = CHECKS[name]
        if isinstance(value, float) and value.is_integer() and not check(value) and check(int(value)):
            value = int(value)   # (a whole number that came through a float: JSON writers and Lua send 8.0)
        if value is None:
            values[name] = fallback[name]   # unset (a client telling the server an option was removed)
        elif check(value):
            values[name] = value
        else:
            warnings.append(f"{SECTION}.{name} = {value!r} is not valid (expected {expected}); using "
                            + ("the default" if fallback[name] is None else repr(fallback[name])))
            values[name] = fallback[name]
    return replace(base, **values), warnings
