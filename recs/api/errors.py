"""One JSON error shape for every API error: {"error": {"code", "message", "details"}}."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


def _flatten_details(detail: Any, path: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error detail into a flat list of {field, message, code}."""
    if isinstance(detail, dict):
        items: list[dict[str, str]] = []
        for key, value in detail.items():
            child = f"{path}.{key}" if path else str(key)
            items.extend(_flatten_details(value, child))
        return items
    if isinstance(detail, list):
        items = []
        for index, value in enumerate(detail):
            child = path if not isinstance(value, dict | list) else f"{path}[{index}]"
            items.extend(_flatten_details(value, child))
        return items
    return [{"field": path, "message": str(detail), "code": getattr(detail, "code", "invalid")}]


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> Response:
    """Build an error response in the house shape; views use it for errors they raise themselves."""
    return Response(
        {"error": {"code": code, "message": message, "details": details or []}}, status=status
    )


def body_size_error(request, limit: int) -> Response | None:
    """The 411 / 400 / 413 for a request whose Content-Length is missing, not a number, or over
    `limit` bytes; None when the body may be read."""
    length = request.headers.get("Content-Length")
    if length is None:
        return error_response(411, "length_required", "Send a Content-Length header.")
    try:
        size = int(length)
    except ValueError:
        return error_response(400, "invalid_length", "Content-Length is not a number.")
    if size > limit:
        return error_response(
            413, "body_too_large", f"The body has {size} bytes; the limit is {limit}."
        )
    return None


def error_envelope_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        details = _flatten_details(exc.detail)
        message = "The request is invalid: " + "; ".join(
            f"{d['field']}: {d['message']}" if d["field"] else d["message"] for d in details[:5]
        )
        code = "invalid"
    else:
        details = []
        message = str(exc.detail)
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
    response.data = {"error": {"code": code, "message": message, "details": details}}
    return response
