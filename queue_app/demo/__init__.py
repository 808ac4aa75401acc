"""`queue-app demo` and the branch simulator: seed data, weeks of history, live lobby traffic."""
