(function_definition) @scope
(class_definition) @scope
(decorated_definition) @scope
(string) @string
(comment) @comment
