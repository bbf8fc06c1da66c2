; Lua. Captures: see python.scm.
[(function_declaration) (function_definition)] @function
[
  (if_statement) (for_statement) (while_statement) (repeat_statement) (do_statement) (table_constructor)
] @block
[(assignment_statement) (variable_declaration) (function_call) (return_statement)] @statement
(string) @string
(comment) @comment
