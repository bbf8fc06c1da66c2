"""Editor logic without torch: tree-sitter spans, prefix/suffix context, length plans and cleaning."""
from .pipeline import EngineLike, InfillRequest, InfillResult, prime_engine, run_infill
from .plan import ContextMemory
from .related import RelatedDocument

__all__ = ["InfillRequest", "InfillResult", "EngineLike", "RelatedDocument", "ContextMemory", "run_infill",
           "prime_engine"]
