"""Which API responses the suite produced, to hold against what the OpenAPI schema documents.

`Recorder` is a middleware the suite puts first (tests/conftest.py): every response that went
through a resolved API route is noted as (route name, method, status). The contract test
(tests/test_api_contract.py) runs last and asks, for every documented (path, method, status),
whether some test produced it.
"""

from __future__ import annotations

import re

from django.urls import Resolver404, resolve

PRODUCED: set[tuple[str, str, int]] = set()


class Recorder:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is not None and request.path.startswith("/api/"):
            PRODUCED.add((match.view_name, request.method, response.status_code))
        return response


def documented(schema: dict) -> set[tuple[str, str, int]]:
    """(route name, method, status) of every response the schema documents."""
    found = set()
    for path, operations in schema["paths"].items():
        try:
            view_name = resolve(re.sub(r"\{[^}]+\}", "1", path)).view_name
        except Resolver404:  # pragma: no cover - a documented path always resolves
            view_name = path
        for method, operation in operations.items():
            for status in operation.get("responses", {}):
                found.add((view_name, method.upper(), int(status)))
    return found
