"""The JSON Schema of the policy format, generated from the pydantic models (editors validate and complete with it)."""

from __future__ import annotations

import json
from typing import Any

from app.policy.model import PolicyDocument

SCHEMA_ID = "https://heedful.dev/schemas/policy.schema.json"


def policy_schema() -> dict[str, Any]:
    schema = PolicyDocument.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def policy_schema_text() -> str:
    return json.dumps(policy_schema(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
