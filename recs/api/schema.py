"""OpenAPI post-processing: the schema lists the placements that exist when it is generated."""

from merch.selectors.merchandising import placement_keys


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
