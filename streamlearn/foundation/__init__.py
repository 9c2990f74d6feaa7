"""Floor 1, the foundation: settings, errors, time, Kafka options, the store, dead letters."""
