"""The OpenAPI contract's cross-cutting parts, added after drf-spectacular has read the views.

- Every error a view can answer is documented, with the one error shape all views share: the
  views declare their own codes (409, 413, 422, 429); the codes every view of a kind answers
  (400 for a bad body or query, 403, 404 for a path id or a page beyond the last) are added here.
- Request bodies are documented as JSON only: the API is called with JSON (the browser UI too);
  form encodings cannot carry the nested bodies, so documenting them would promise what fails.
  The upload (imports) stays multipart.
- OpenAPI links say where the ids come from (a project's from the project list, an item's from
  the item list or the queue, ...), so a client, or Schemathesis's stateful phase, can chain calls
  with real ids instead of guessing them.
"""
from __future__ import annotations

import re

JSON = "application/json"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "description": "What was refused and why: {\"field\": [\"message\", ...]} naming each field (a path such as "
                   "\"items[3].data.text\" for bodies checked by hand; a nested object or list for nested fields), "
                   "or {\"detail\": \"message\"}.",
    "properties": {"detail": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}},
    "additionalProperties": {"oneOf": [{"type": "array"}, {"type": "object"}, {"type": "string"}]},
}
GENERIC_ERRORS = {
    "400": "The body or a query parameter is invalid; the answer names each field and its problem.",
    "401": "No credentials, or a user or project token that is unknown, expired or revoked.",
    "403": "The caller's role in the project, or the project token's scope, does not allow this.",
    "404": "No such project for the caller (outsiders learn nothing), no such object in it, or no such page.",
    "429": "Too many requests from this address, or too many failed logins for this username: retry after Retry-After.",
}
PUBLIC_OPERATIONS = {"auth_token_create", "schema_retrieve"}  # callable without credentials
PRODUCT_OPERATIONS = {"projects_predict_create", "projects_feedback_create"}  # callable with a project token

# Where each id comes from: (producer operationId, status) -> {path parameter: runtime expression}.
# Tokens come only from their creation, never from the list: a client walking the list would
# revoke the token it calls with.
PRODUCERS = {
    ("projects_list", "200"): {"project_id": "$response.body#/results/0/id"},
    ("projects_create", "201"): {"project_id": "$response.body#/id"},
    ("projects_items_list", "200"): {"item_id": "$response.body#/results/0/id"},
    ("projects_queue_next_create", "200"): {"item_id": "$response.body#/id"},
    ("projects_review_list", "200"): {"item_id": "$response.body#/items/0/id"},
    ("projects_items_annotations_create", "201"): {"annotation_id": "$response.body#/id"},
    ("projects_items_skip_create", "201"): {"annotation_id": "$response.body#/id"},
    ("projects_annotations_list", "200"): {"annotation_id": "$response.body#/results/0/id"},
    ("projects_exports_create", "202"): {"export_id": "$response.body#/id"},
    ("projects_exports_list", "200"): {"export_id": "$response.body#/results/0/id"},
    ("projects_models_create", "202"): {"number": "$response.body#/0/number"},
    ("projects_models_list", "200"): {"number": "$response.body#/results/0/number"},
    ("projects_tokens_create", "201"): {"prefix": "$response.body#/prefix"},
}
# A prediction's id goes back with the user's feedback.
BODY_LINKS = {
    ("projects_predict_create", "200"): ("projects_feedback_create", {
        "prediction_id": "$response.body#/prediction_id", "kind": "confirmation", "end_user": "u-1",
        "occurred_at": "2026-01-01T00:00:00Z"}),
}


def postprocess(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    operations = {}
    for path, methods in result["paths"].items():
        for method, operation in methods.items():
            operations[operation["operationId"]] = (path, operation)
            _json_only(operation)
            _document_errors(path, operation)
    _link(result["paths"], operations)
    return result


def _json_only(operation: dict) -> None:
    content = operation.get("requestBody", {}).get("content", {})
    if JSON in content:
        for media_type in [m for m in content if m != JSON]:
            del content[media_type]


def _document_errors(path: str, operation: dict) -> None:
    responses = operation["responses"]
    parameters = operation.get("parameters", [])
    codes = set()
    if operation["operationId"] == "auth_token_create":
        codes |= {"400", "429"}
    elif operation["operationId"] not in PUBLIC_OPERATIONS:
        codes |= {"401", "403"}  # user tokens are tried first: no or a bad credential is a 401
    if "{" in path or any(p["name"] == "page" for p in parameters):
        codes.add("404")
    if "requestBody" in operation or any(p["in"] == "query" for p in parameters):
        codes.add("400")
    for code in sorted(codes):
        responses.setdefault(code, {"description": GENERIC_ERRORS[code]})
    for code, response in responses.items():
        if code.startswith("4") and not response.get("content"):
            response["content"] = {JSON: {"schema": ERROR_REF}}


def _path_parameters(path: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", path))


def _link(paths: dict, operations: dict) -> None:
    for (producer, status), produced in PRODUCERS.items():
        source_path, operation = operations[producer]
        known = {name: f"$request.path.{name}" for name in _path_parameters(source_path)} | produced
        links = operation["responses"][status].setdefault("links", {})
        for target, (target_path, _) in operations.items():
            needed = _path_parameters(target_path)
            if needed and set(produced) <= needed <= set(known):
                links[target] = {"operationId": target, "parameters": {f"path.{n}": known[n] for n in sorted(needed)}}
    for (producer, status), (target, body) in BODY_LINKS.items():
        source_path, operation = operations[producer]
        parameters = {f"path.{n}": f"$request.path.{n}" for n in _path_parameters(source_path)}
        operation["responses"][status].setdefault("links", {})[target] = {
            "operationId": target, "parameters": parameters, "requestBody": body}
