"""What an expc program means and when it runs: imports, checking, planning, store, execution, watch.
Never imports torch."""
