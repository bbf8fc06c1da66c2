; Java. Captures: see python.scm.
[(method_declaration) (constructor_declaration) (lambda_expression)] @function
[
  (class_declaration) (interface_declaration) (enum_declaration) (record_declaration)
  (annotation_type_declaration)
] @class
(object_creation_expression (class_body)) @class   ; an anonymous class
[
  (if_statement) (for_statement) (enhanced_for_statement) (while_statement) (do_statement) (try_statement)
  (switch_expression) (static_initializer)
] @block
[
  (expression_statement) (local_variable_declaration) (return_statement) (throw_statement) (break_statement)
  (continue_statement)
] @statement
[(string_literal) (character_literal)] @string
[(line_comment) (block_comment)] @comment
