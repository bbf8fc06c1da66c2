(function_declaration) @scope
(function_expression) @scope
(arrow_function) @scope
(method_definition) @scope
(class_declaration) @scope
(string) @string
(template_string) @string
(comment) @comment
