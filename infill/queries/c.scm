(function_definition) @scope
(struct_specifier) @scope
(string_literal) @string
(comment) @comment
