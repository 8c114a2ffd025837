"""The API's documentation as a page of this site (/api/docs/): the OpenAPI schema, read into
operations a person can scan. Our own page, not Swagger UI or Redoc: those are JavaScript
from outside the site, which the Content-Security-Policy refuses and a server without
network cannot fetch."""

from django.shortcuts import render
from django.views.decorators.http import require_GET
from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref", "")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else node


def _type(schema: dict, node: dict) -> str:
    """A field's type in a few words: "integer", "list of string", "StudyItem", "one of: U, C"."""
    if "$ref" in node:
        target = _resolve(schema, node)
        return "one of: " + ", ".join(map(str, target["enum"])) if "enum" in target else node["$ref"].rsplit("/", 1)[1]
    if "allOf" in node or "oneOf" in node:
        return " or ".join(_type(schema, n) for n in node.get("allOf", node.get("oneOf")))
    if node.get("type") == "array":
        return "list of " + _type(schema, node.get("items", {}))
    kind = node.get("type", "any")
    return f"{kind} ({node['format']})" if "format" in node else kind


def _body(schema: dict, content: dict | None) -> dict | None:
    """The JSON body's fields (name, type, required, read-only, description)."""
    media = (content or {}).get("application/json")
    if not media:
        return None
    node = media["schema"]
    name = node["$ref"].rsplit("/", 1)[1] if "$ref" in node else None
    return {"name": name or _type(schema, node), "fields": _fields(schema, _resolve(schema, node))}


def _fields(schema: dict, target: dict) -> list[dict]:
    required = set(target.get("required", []))
    return [{"name": field, "type": _type(schema, spec), "required": field in required,
             "read_only": spec.get("readOnly", False), "description": spec.get("description", "")}
            for field, spec in target.get("properties", {}).items()]


def shapes(schema: dict) -> list[dict]:
    """The bodies the operations take and return, by name, with their fields."""
    return [{"name": name, "description": target.get("description", ""), "fields": _fields(schema, target),
             "closed": target.get("additionalProperties") is False}
            for name, target in schema["components"]["schemas"].items() if "properties" in target]


def operations(schema: dict) -> list[dict]:
    """Every operation of the schema, grouped by its first tag, in the schema's order."""
    groups: dict[str, list] = {}
    for path, item in schema["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            groups.setdefault((op.get("tags") or ["other"])[0], []).append({
                "id": op["operationId"], "method": method.upper(), "path": path,
                "description": op.get("description", ""),
                "login": bool(op.get("security")) and {} not in op["security"],
                "parameters": [{"name": p["name"], "in": p["in"], "required": p.get("required", False),
                                "type": _type(schema, p.get("schema", {})), "description": p.get("description", "")}
                               for p in op.get("parameters", [])],
                "body": _body(schema, op.get("requestBody", {}).get("content")),
                "responses": [{"code": code, "description": r.get("description", ""),
                               "body": (_body(schema, r.get("content")) or {}).get("name")}
                              for code, r in sorted(op["responses"].items())],
            })
    return [{"tag": tag, "operations": ops} for tag, ops in groups.items()]


@require_GET
def api_docs(request):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return render(request, "annotations/api_docs.html", {"info": schema["info"], "groups": operations(schema),
                                                       "shapes": shapes(schema)})
