"""The broker's wire handlers, one module per feature; importing the package registers every `handle_<type>`
with `broker.handlers.registry`."""

from broker.handlers import (  # noqa: F401  (registration)
    apikeys,
    files,
    hello,
    keyring,
    members,
    memory,
    messaging,
    moderation,
    presence,
    schedules,
    state,
    tasks,
    topics,
    webhooks,
)
