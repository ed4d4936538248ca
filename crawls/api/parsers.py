"""The API's JSON parser: bodies bounded in size and in depth.

At most DATA_UPLOAD_MAX_MEMORY_SIZE bytes are read (more answers 413, whatever Content-Length
said), and the text's nesting is measured without recursion before json parses it (deeper than
JSON_MAX_DEPTH answers 400): JSON inside JSON fields (a source's `rules`, an alert `filter`) is
bounded by the same check.
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.utils import json as drf_json

from crawls import bounds


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"

    def __init__(self):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(f"the request body exceeds the limit of {limit} bytes")


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
            bounds.text_check_depth(text)
            parse_constant = drf_json.strict_constant if self.strict else None
            return json.loads(text, parse_constant=parse_constant)
        except bounds.TooDeep as exc:
            raise exceptions.ParseError(str(exc)) from exc
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
