(function_declaration) @scope
(method_declaration) @scope
(func_literal) @scope
(type_declaration) @scope
(interpreted_string_literal) @string
(raw_string_literal) @string
(comment) @comment
