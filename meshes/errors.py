"""What a service or selector raises when it refuses: a stable `code`, a human message and the HTTP status
it maps to. `ServiceError` is a request that cannot be done as asked (a form shows it next to the field);
`Forbidden` is an actor who may not ask (a page shows the 403). Callers that only report, like the JSON API
and the broker, catch `MeshError`, which both are."""

from __future__ import annotations


class MeshError(Exception):
    status = 400

    def __init__(self, code: str, message: str, *, status: int | None = None, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra
        if status is not None:
            self.status = status


class ServiceError(MeshError):
    pass


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class Gone(ServiceError):
    status = 410


class Forbidden(MeshError):
    status = 403
