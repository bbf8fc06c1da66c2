"""Model side: loading DiffusionGemma, the infill canvas and the denoising sampler. Knows nothing of LSP."""
from .types import Candidate, Candidates, Cancelled, EngineConfig, EngineError, ModelLoadError

__all__ = ["InfillEngine", "EngineConfig", "EngineError", "ModelLoadError", "Cancelled", "Candidate", "Candidates"]


def __getattr__(name):
    # torch and transformers load only when the engine is actually used, so the server starts answering at once.
    if name == "InfillEngine":
        from .infill_engine import InfillEngine
        return InfillEngine
    raise AttributeError(name)
