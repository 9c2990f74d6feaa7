"""Floor 3, the shared domain below the worker and the retrain job: features, releases."""
