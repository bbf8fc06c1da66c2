(function_definition) @scope
(class_specifier) @scope
(struct_specifier) @scope
(lambda_expression) @scope
(string_literal) @string
(raw_string_literal) @string
(comment) @comment
