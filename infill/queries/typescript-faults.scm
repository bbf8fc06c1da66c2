; What the grammar reads but the language rejects: `f(a,, b)`, `{, a}` (infill/silent_faults.py)
[(arguments) (object) (object_pattern)] @list
