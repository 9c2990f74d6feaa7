"""The Faust worker: decode, validate, event-time features, scoring, sinks, model hot-swap."""
