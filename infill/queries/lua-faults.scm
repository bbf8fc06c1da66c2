; What the grammar reads but the language rejects (infill/silent_faults.py): two statements on a line with nothing
; between a name and a name (`local client vim.fn.x()`, `local f err = g()`, an `=` or `,` lost)
[(chunk) (block)] @statements
