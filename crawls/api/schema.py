"""What every operation can answer, documented once (a drf-spectacular postprocessing hook).

- 429: every operation is throttled (API_RATE_*), with Retry-After;
- 503: PostgreSQL or Redis unreachable, with Retry-After;
- 413: an operation that takes a body, over DATA_UPLOAD_MAX_MEMORY_SIZE.

All in the error envelope. (414, an overlong URL, is answered before any route is chosen:
docs/api.md says so once.)
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse

from crawls.api.serializers import ErrorSerializer

ERROR = OpenApiResponse(
    ErrorSerializer, description="Error envelope: {error: {code, message, details}}."
)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """`extend_schema(responses=...)` entries: each of `codes` answers the error envelope."""
    return dict.fromkeys(codes, ERROR)


SHARED = {
    "429": "Too many requests (the caller's or the workspace's rate): Retry-After.",
    "503": "PostgreSQL or Redis unreachable (message names which): Retry-After.",
}
TOO_LARGE = "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE."
METHODS = {"get", "put", "post", "patch", "delete"}


def document_shared_errors(result, generator, request, public):
    has_envelope = "Error" in result.get("components", {}).get("schemas", {})
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            answers = operation.setdefault("responses", {})
            extra = dict(SHARED)
            if "requestBody" in operation:
                extra["413"] = TOO_LARGE
            for code, description in extra.items():
                if code in answers:
                    continue
                answers[code] = {"description": description}
                if has_envelope:
                    answers[code]["content"] = {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    }
    return result
