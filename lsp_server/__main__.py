"""`python -m lsp_server` = the `infill-lsp` console script."""
from .cli import main

if __name__ == "__main__":
    main()
