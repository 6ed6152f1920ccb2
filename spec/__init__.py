"""What an expc program is: grammar, syntax tree, types, IR and diagnostics. Never imports torch."""
