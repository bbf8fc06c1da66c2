"""The language server: protocol, documents, scheduling, options, progress and errors. Never touches tensors."""
__version__ = "0.1.0"
