; Python. @function / @class / @block are scopes a completion belongs to; @statement is the statement at the
; cursor; @string / @comment are where inline completion stays quiet; so is @text (prose with no closing
; delimiter, such as JSX text, so a cursor at its very end is still inside it).
(function_definition) @function
(lambda) @function
(class_definition) @class
[
  (if_statement) (for_statement) (while_statement) (with_statement) (try_statement) (match_statement)
] @block
[
  (expression_statement) (return_statement) (import_statement) (import_from_statement) (raise_statement)
  (assert_statement) (pass_statement) (break_statement) (continue_statement) (delete_statement)
  (global_statement) (nonlocal_statement)
] @statement
(string) @string
(comment) @comment
