; C++. Captures: see python.scm.
[(function_definition) (lambda_expression)] @function
[
  (class_specifier) (struct_specifier) (union_specifier) (enum_specifier) (namespace_definition)
  (linkage_specification)
] @class   ; linkage_specification: `extern "C" {`
[
  (if_statement) (for_statement) (for_range_loop) (while_statement) (do_statement) (switch_statement)
  (try_statement)
] @block
[(expression_statement) (declaration) (return_statement) (break_statement) (continue_statement)] @statement
[(string_literal) (raw_string_literal) (char_literal)] @string
(comment) @comment
