"""What every feature stands on: settings, extensions, the database and its transactions, errors, the event bus, security, logs and languages. Imports no feature."""
