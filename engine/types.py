"""Plain data that crosses the engine boundary. No torch here, so callers can import it cheaply."""
from __future__ import annotations

from dataclasses import dataclass, field


QUANTIZE_FORMATS = ("none", "int8", "int4")   # weight formats engine/quantize.py keeps in memory


class EngineError(Exception):
    """A failure the user should read (bad checkpoint, out of memory, ...)."""


class ModelLoadError(EngineError):
    """The model could not be loaded: missing folder, corrupt weights, mismatched config, hub not allowed."""


class Cancelled(Exception):
    """The caller's cancel() turned true between denoising steps."""


@dataclass
class EngineConfig:
    model: str | None = None          # local folder or hub id; None = the embedded model in models/
    device: str = "auto"              # auto | cpu | cuda | cuda:N
    dtype: str = "auto"               # auto (cpu fp32, cuda bf16) | float32 | bfloat16 | float16
    quantize: str = "none"            # none | int8 | int4: weight-only, the text model's linear layers and experts
                                      # (engine/quantize.py); activations stay in dtype
    allow_download: bool = False      # hub ids only load when the user allows it
    trust_remote_code: bool = False
    max_steps: int | None = None      # denoising steps per canvas; None = 48 on a GPU (the model card's cap),
                                      # 24 on a CPU, where each step costs tens of milliseconds
    entropy_bound: float = 0.1        # entropy-bound acceptance (model card: 0.1)
    t_max: float = 0.8                # temperature at the first step
    t_min: float = 0.4                # temperature at the last step
    stop_entropy: float = 0.005       # adaptive stop: mean entropy below this ...
    stability_steps: int = 1          # ... and argmax unchanged for this many steps
    self_conditioning: bool = True
    acceptance: str = "entropy-bound" # or "confidence" (keep tokens whose probability >= confidence_threshold)
    confidence_threshold: float = 0.9
    noise: str = "auto"               # auto (as the checkpoint was trained) | uniform | masked (needs a <mask> token)
    reuse_prefix: bool = True         # keep the encoder cache of the longest shared prompt prefix between calls
    fast_path: str = "auto"           # auto (compiled on CUDA, off on CPU) | compiled | static (static cache,
                                      # eager step) | off (dynamic cache, eager step)
    compile_backend: str = "inductor" # torch.compile backend for the compiled path ("aot_eager": capture only)
    seed: int = 0
    threads: int | None = None        # CPU threads; None = half the cores (at most 4) for a small model, else torch's own
    max_prompt_tokens: int | None = None  # context tokens read (prefix + suffix + sentinels); None = the checkpoint's
                                      # own (diffusion_infill.json, else 4096); the static fast path keeps it
                                      # within the sliding window


@dataclass
class Candidate:
    text: str                         # decoded middle, up to (not including) the end token
    confidence: float                 # exp(-mean entropy over the denoising run), 0..1
    length: int                       # tokens kept
    canvas_length: int                # canvas size this candidate was denoised on
    steps: int                        # denoising passes run
    ended: bool                       # the model placed an end token inside the canvas


@dataclass
class Candidates:
    items: list[Candidate]            # best first
    layout: str                       # FIM layout used, e.g. "spm-sentinels"
    reason: str                       # why items[0] was chosen
    timings: dict[str, float] = field(default_factory=dict)  # encode_ms, denoise_ms, total_ms

    @property
    def best(self) -> Candidate | None:
        return self.items[0] if self.items else None
