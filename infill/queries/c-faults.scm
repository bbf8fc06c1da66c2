; What the grammar reads but the language rejects (infill/silent_faults.py): a statement with its `=` lost read
; as a declaration (`n strlen(s);`, `n n = strlen(s);`)
(compound_statement (declaration) @declaration)
