"""The API's JSON parser: DRF's, with nesting bounded so that a hostile body is a 400, never a
RecursionError (500)."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from aisle.conf import aisle_settings


def nesting_depth_exceeds(value: object, limit: int) -> bool:
    """Whether `value` nests more than `limit` arrays/objects deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = aisle_settings.JSON_MAX_DEPTH
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError(f"JSON nested too deeply; at most {limit} levels.") from error
        if nesting_depth_exceeds(data, limit):
            raise ParseError(f"JSON nested too deeply; at most {limit} levels.")
        return data
