; What the grammar reads but the language rejects: `f(a,, b)`, `{, a}`, `<b></i>` (infill/silent_faults.py)
[(arguments) (object) (object_pattern)] @list
(jsx_element) @element
