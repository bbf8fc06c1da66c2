(function_item) @scope
(impl_item) @scope
(trait_item) @scope
(closure_expression) @scope
(string_literal) @string
(raw_string_literal) @string
(line_comment) @comment
(block_comment) @comment
