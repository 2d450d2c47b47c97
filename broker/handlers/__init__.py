"""The broker's wire handlers, one module per feature; importing the package registers every `handle_<type>`
with `broker.handlers.registry`."""

from broker.handlers import apikeys, hello, keyring, members, messaging, presence, topics  # noqa: F401  (registration)
