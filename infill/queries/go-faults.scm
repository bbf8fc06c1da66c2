; What tree-sitter-go reads but Go does not compile: a block's `{` after a line break that ends the statement, a
; closer on its own line after an element with no comma (infill/silent_faults.py)
[
  (if_statement) (for_statement) (function_declaration) (method_declaration) (func_literal)
  (expression_switch_statement) (type_switch_statement)
] @braced
[(literal_value) (argument_list) (parameter_list) (type_parameter_list) (type_arguments)] @list
