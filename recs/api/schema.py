"""The API's OpenAPI description, whatever the project's REST_FRAMEWORK settings say: operations
annotated on drf-spectacular's own AutoSchema, and the placements that exist listed in the schema."""

import threading
from collections.abc import Callable
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema as spectacular_extend_schema
from drf_spectacular.views import SCHEMA_KWARGS, SpectacularAPIView

from merch.selectors.merchandising import placement_keys


def extend_schema(**kwargs: Any) -> Callable:
    """drf-spectacular's `extend_schema` for a view method, built on drf-spectacular's AutoSchema
    rather than on the project's DEFAULT_SCHEMA_CLASS (DRF's default cannot describe a view)."""

    def decorator(method: Callable) -> Callable:
        method.schema = AutoSchema  # drf-spectacular takes a method's `schema` as its base
        return spectacular_extend_schema(**kwargs)(method)

    return decorator


_generating = threading.Lock()


class SchemaView(SpectacularAPIView):
    """drf-spectacular's schema view, one generation at a time per process: its generator keeps
    state in shared objects, and two threads of a gthread worker generating at once answer 500
    (drf-spectacular issues #1123 and #1368)."""

    @spectacular_extend_schema(**SCHEMA_KWARGS)  # as the view it wraps describes itself
    def get(self, request, *args, **kwargs):
        with _generating:
            return super().get(request, *args, **kwargs)


def enumerate_placements(result: dict, generator, request, public) -> dict:
    """Put the placement keys defined in the admin into the `placement` parameter's enum."""
    try:
        keys = placement_keys()
    except Exception:  # no database while generating offline: leave the parameter open
        return result
    if not keys:
        return result
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "placement":
                    parameter["schema"] = {**parameter.get("schema", {}), "enum": keys}
    return result
