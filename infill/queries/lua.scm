(function_declaration) @scope
(function_definition) @scope
(string) @string
(comment) @comment
