"""The project's own exceptions: each message says what went wrong and what fixes it."""


class StreamlearnError(Exception):
    """Root of every error a user can act on; the CLI prints it as one line."""


class ConfigError(StreamlearnError):
    """A setting or flag has a value that cannot work."""


class MissingToolError(StreamlearnError):
    """A program the local broker or registry needs (Java 17+, Maven) is not installed."""


class BrokerUnavailable(StreamlearnError):
    """The Kafka bootstrap servers cannot be reached."""


class RegistryUnavailable(StreamlearnError):
    """The local schema registry could not be built, started or reached."""


class StoreUnavailable(StreamlearnError):
    """ClickHouse cannot be reached or refused the request."""


class StoreBusy(StreamlearnError):
    """The embedded store is owned by a running worker that did not answer."""


class InvalidRecord(StreamlearnError):
    """A decoded record breaks a rule of the contract (missing field, impossible value)."""


class ModelRejected(StreamlearnError):
    """A model release failed verification or needs features the worker cannot compute."""


class NotEnoughData(StreamlearnError):
    """The history holds too few matured labels to train or evaluate a model."""


class Refused(StreamlearnError):
    """A request was refused on its merits: a model release, a schema or a query."""


class QueryRefused(Refused):
    """ClickHouse (or the read-only check before it) refused a query: a write, bad SQL."""


class WorkerUnavailable(StreamlearnError):
    """No running worker answered on its web port."""
