"""What every feature stands on: settings, extensions, the database and its transactions, errors,
the event bus, security, logs, languages and the model base. Imports no feature."""
