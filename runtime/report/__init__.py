"""Report rendering: result tables and matplotlib plots (imported only when a report runs)."""
