; C. Captures: see python.scm.
(function_definition) @function
[(struct_specifier) (union_specifier) (enum_specifier)] @class
[
  (if_statement) (for_statement) (while_statement) (do_statement) (switch_statement)
] @block
[(expression_statement) (declaration) (return_statement) (break_statement) (continue_statement)] @statement
[(string_literal) (char_literal)] @string
(comment) @comment
