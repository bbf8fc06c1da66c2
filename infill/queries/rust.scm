; Rust. Captures: see python.scm.
[(function_item) (closure_expression) (macro_definition)] @function
[(impl_item) (trait_item) (struct_item) (enum_item) (mod_item)] @class
[
  (if_expression) (for_expression) (while_expression) (loop_expression) (match_expression) (unsafe_block)
  (async_block)
] @block
[(expression_statement) (let_declaration) (use_declaration)] @statement
[(string_literal) (raw_string_literal) (char_literal)] @string
[(line_comment) (block_comment)] @comment
