"""User options (initializationOptions / settings section "diffusionInfill") as a defaulted dataclass.

A bad value is reported and replaced by its default; it never stops the server."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from engine.types import EngineConfig

SECTION = "diffusionInfill"


@dataclass(frozen=True)
class ServerOptions:
    model: str | None = None          # local folder or hub id; None = the embedded model
    allowDownload: bool = False
    trustRemoteCode: bool = False
    device: str = "auto"
    dtype: str = "auto"
    maxNewTokens: int = 48
    steps: int = 48
    seed: int = 0

    def engine_config(self) -> EngineConfig:
        return EngineConfig(model=self.model, device=self.device, dtype=self.dtype,
                            allow_download=self.allowDownload, trust_remote_code=self.trustRemoteCode,
                            max_steps=self.steps, seed=self.seed)

    def model_key(self) -> tuple:
        """Options that need the model reloaded when they change."""
        return (self.model, self.allowDownload, self.trustRemoteCode, self.device, self.dtype)


CHOICES = {"device": None, "dtype": ("auto", "float32", "bfloat16", "float16")}
LIMITS = {"maxNewTokens": (1, 256), "steps": (1, 256), "seed": (0, 2**31 - 1)}


def _valid(name: str, value, default) -> bool:
    if name == "model":
        return value is None or (isinstance(value, str) and value.strip() != "")
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        low, high = LIMITS[name]
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if name == "device":
        return isinstance(value, str) and (value in ("auto", "cpu", "cuda") or value.startswith("cuda:"))
    return isinstance(value, str) and value in CHOICES[name]


def parse_options(raw, base: ServerOptions | None = None) -> tuple[ServerOptions, list[str]]:
    """(options, warnings). Accepts the section itself or an object holding it under "diffusionInfill"."""
    base = base or ServerOptions()
    if raw is None:
        return base, []
    if not isinstance(raw, dict):
        return base, [f"{SECTION} settings must be an object, got {type(raw).__name__}; using defaults"]
    if isinstance(raw.get(SECTION), dict):
        raw = raw[SECTION]
    warnings, values = [], {}
    known = {f.name: f for f in fields(ServerOptions)}
    for name, value in raw.items():
        if name not in known:
            warnings.append(f"unknown {SECTION} option '{name}' ignored")
            continue
        default = known[name].default
        if name == "model" and value == "":
            value = None
        if _valid(name, value, default):
            values[name] = value
        else:
            warnings.append(f"{SECTION}.{name} = {value!r} is not valid; using {default!r}")
            values[name] = default
    return replace(base, **values), warnings
