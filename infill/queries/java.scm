(method_declaration) @scope
(constructor_declaration) @scope
(class_declaration) @scope
(interface_declaration) @scope
(lambda_expression) @scope
(string_literal) @string
(line_comment) @comment
(block_comment) @comment
