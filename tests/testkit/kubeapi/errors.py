"""Kubernetes ``Status`` errors, shaped like the ones kube-apiserver returns.

Clients branch on ``code`` and ``reason`` (the python client raises ``ApiException`` with the
status; kubectl prints ``message`` and, for apply conflicts, ``details.causes``), so each
constructor copies the real server's wording.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered to the client as a ``Status`` object with an HTTP status code."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        """The ``Status`` body sent with the error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def group_resource(group: str, resource: str) -> str:
    """``configmaps`` for the core group, ``spinapps.core.spinkube.dev`` otherwise."""
    return f"{resource}.{group}" if group else resource


def _details(group: str, resource: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


def not_found(group: str, resource: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{group_resource(group, resource)} "{name}" not found',
        _details(group, resource, name),
    )


def already_exists(group: str, resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{group_resource(group, resource)} "{name}" already exists',
        _details(group, resource, name),
    )


def version_conflict(group: str, resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {group_resource(group, resource)} "{name}": '
        "the object has been modified; please apply your changes to the latest version "
        "and try again",
        _details(group, resource, name),
    )


def invalid(
    group: str, kind: str, name: str, causes: list[tuple[str, str, str]]
) -> ApiError:
    """422 Invalid; ``causes`` are ``(reason, field, message)`` like ``field.ErrorList``."""
    qualified_kind = f"{kind}.{group}" if group else kind
    parts = [f"{field}: {message}" for _, field, message in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [
        {"reason": reason, "message": message.split(": ", 1)[-1], "field": field}
        for reason, field, message in causes
    ]
    return ApiError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {summary}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> ApiError:
    return ApiError(405, "MethodNotAllowed", message, {})


def unsupported_media_type(accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def page_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def namespace_terminating(group: str, resource: str, name: str, namespace: str) -> ApiError:
    """403 from the NamespaceLifecycle admission plugin: no new object in a namespace that is
    being deleted (``plugin/pkg/admission/namespace/lifecycle``)."""
    details = _details(group, resource, name)
    details["causes"] = [{"reason": "NamespaceTerminating", "message": f"namespace {namespace} is being terminated",
                          "field": "metadata.namespace"}]
    return ApiError(
        403,
        "Forbidden",
        f'{group_resource(group, resource)} "{name}" is forbidden: unable to create new content in namespace '
        f"{namespace} because it is being terminated",
        details,
    )


def namespace_finalizing(name: str) -> ApiError:
    """409 for a second DELETE of a namespace that is already terminating."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on namespaces "{name}": The system is ensuring all content is removed '
        "from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
        _details("", "namespaces", name),
    )
