; Go. Captures: see python.scm.
[(function_declaration) (method_declaration) (func_literal)] @function
(type_declaration) @class
[
  (if_statement) (for_statement) (expression_switch_statement) (type_switch_statement) (select_statement)
] @block
[
  (expression_statement) (short_var_declaration) (assignment_statement) (return_statement) (var_declaration)
  (const_declaration) (go_statement) (defer_statement) (inc_statement) (dec_statement) (send_statement)
] @statement
[(interpreted_string_literal) (raw_string_literal) (rune_literal)] @string
(comment) @comment
; What tree-sitter-go reads but Go does not compile: a `{` or `else` after a line break that ends the statement, a
; closer on its own line after an element with no comma (infill/silent_faults.py)
[
  (if_statement) (for_statement) (function_declaration) (method_declaration) (func_literal)
  (expression_switch_statement) (type_switch_statement)
] @braced
[(literal_value) (argument_list) (parameter_list) (type_parameter_list) (type_arguments)] @list
