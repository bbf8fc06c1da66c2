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
