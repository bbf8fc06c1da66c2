; TypeScript. Captures: see python.scm.
[
  (function_declaration) (function_expression) (arrow_function) (method_definition)
  (generator_function_declaration) (generator_function)
] @function
[
  (class_declaration) (class) (abstract_class_declaration) (interface_declaration) (enum_declaration)
  (internal_module)
] @class   ; internal_module: `namespace NS {`
[
  (if_statement) (for_statement) (for_in_statement) (while_statement) (do_statement) (try_statement)
  (switch_statement) (class_static_block)
] @block
[
  (expression_statement) (lexical_declaration) (variable_declaration) (return_statement) (throw_statement)
  (import_statement) (break_statement) (continue_statement)
] @statement
[(string) (template_string) (regex)] @string
(comment) @comment
