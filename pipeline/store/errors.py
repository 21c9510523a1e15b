"""The store's one error type."""


class StoreError(RuntimeError):
    """A store that is missing or malformed, or a request it cannot honour."""
