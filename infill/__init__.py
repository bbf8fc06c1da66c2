"""Editor logic without torch: tree-sitter spans, prefix/suffix context, length plans and cleaning."""
from .pipeline import EngineLike, InfillRequest, InfillResult, related_used, run_infill
from .related import RelatedDocument

__all__ = ["InfillRequest", "InfillResult", "EngineLike", "RelatedDocument", "related_used", "run_infill"]
