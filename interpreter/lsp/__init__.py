"""The language server (`expc lsp`): diagnostics as you type, hover, completion, navigation,
formatting and quick fixes for .exp files, over the Language Server Protocol (pygls).

    analysis.py     one document version checked (`expc check` on the unsaved text)
    incremental.py  statement-by-statement parsing that reuses unchanged statements
    symbols.py      declarations and every occurrence of a name, by position
    hover.py, completion.py, navigation.py, actions.py   the features
    completion_context.py  where the cursor is: the call, block and field being typed, the type expected
    docs.py         operators, fields and settings as markdown (`expc ops NAME`'s lines)
    cached.py       results an earlier run left in the store (read, never computed)
    server.py       the protocol: scheduling checks, publishing, answering requests
"""
