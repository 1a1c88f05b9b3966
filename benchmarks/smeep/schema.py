"""SCHEMA.md as JSON Schema (draft 2020-12): the documents SMEEP writes, for validators and the tests.

Every object allows more properties than it lists (the schemas grow by additions only, SCHEMA.md); what is listed
is required, with its type. `validate(document)` picks the schema by the document's `schema` field.
"""

from __future__ import annotations

from typing import Any

STATUSES = ["PASS", "FAIL", "ERR", "TIMEOUT", "SKIP", "LOAD_FAIL"]
INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}
INT_OR_NULL = {"type": ["integer", "null"]}
NUM_OR_NULL = {"type": ["number", "null"]}
STR_OR_NULL = {"type": ["string", "null"]}


def _obj(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "required": sorted(properties), "properties": properties, **extra}


def _map(values: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": values}


SPREAD = _obj({"median": NUM_OR_NULL, "min": NUM_OR_NULL, "max": NUM_OR_NULL})
HARDWARE = _obj(
    {
        "cpu_model": STR_OR_NULL,
        "cpu_cores": INT_OR_NULL,
        "ram_mib": INT_OR_NULL,
        "machine": STR,
        "kernel": STR,
        "python": STR,
    }
)
ENGINE = _obj(
    {"kind": STR, "url": STR, "version": STR_OR_NULL, "context_size": INT_OR_NULL, "api_key_env": STR_OR_NULL}
)
BASE = {
    "timestamp": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$"},
    "smeep_version": STR,
    "command": {"type": "string", "pattern": "^smeep "},
    "hardware": HARDWARE,
}
TRIAL = _obj(
    {
        "trial": {"type": "integer", "minimum": 1},
        "status": {"enum": STATUSES},
        "ms": INT_OR_NULL,
        "tools": INT_OR_NULL,
        "error": STR_OR_NULL,
        "seed": INT_OR_NULL,
        "temperature": NUM_OR_NULL,
    }
)
RUN = _obj(
    {
        "status": {"enum": STATUSES},
        "ms": INT_OR_NULL,
        "ms_min": INT_OR_NULL,
        "ms_max": INT_OR_NULL,
        "reply": STR,
        "tools": INT_OR_NULL,
        "tool_names": {"type": ["array", "null"], "items": STR},
        "input_tokens": INT_OR_NULL,
        "output_tokens": INT_OR_NULL,
        "error": STR_OR_NULL,
        "passes": {"type": "integer", "minimum": 0},
        "trials": {"type": "array", "minItems": 1, "items": TRIAL},
    }
)
SUMMARY = _obj(
    {
        "passes": {"type": "integer", "minimum": 0},
        "eligible": {"type": "integer", "minimum": 0},
        "pass_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "avg_ms": INT_OR_NULL,
        "groups": _map(_obj({"passes": INT, "total": INT})),
        "failed": {"type": "array", "items": STR},
        "pass_at_1": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "pass_hat_k": _map({"type": "number", "minimum": 0, "maximum": 1}),
        "per_repeat": {"type": "array", "items": NUM},
        "spread": {"type": ["object", "null"], "required": ["min", "max", "stdev"]},
    }
)
RESULTS = _obj(
    {
        "schema": {"const": "smeep-results/1"},
        **BASE,
        "engine": ENGINE,
        "driver": {"enum": ["direct", "openclaw"]},
        "agent": STR_OR_NULL,
        "trials": {"type": "integer", "minimum": 1},
        "seed": INT_OR_NULL,
        "temperature": NUM_OR_NULL,
        "model_notes": _map({"type": "object"}),
        "models": {"type": "array", "minItems": 1, "items": STR},
        "tests": {
            "type": "array",
            "minItems": 1,
            "items": _obj(
                {
                    "id": STR,
                    "tier": {"type": "integer", "minimum": 0, "maximum": 4},
                    "name": STR,
                    "suite": {"enum": ["ladder", "suite"]},
                    "category": STR,
                    "mode": {"enum": ["infer", "agent"]},
                }
            ),
        },
        "runs": _map(_map(RUN)),
        "summary": _map(SUMMARY),
    }
)
THROUGHPUT = _obj(
    {
        "schema": {"const": "smeep-throughput/1"},
        **BASE,
        "engine": ENGINE,
        "throughput": _map(
            {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"enum": ["PASS", "ERR", "LOAD_FAIL"]}},
                "if": {"properties": {"status": {"const": "PASS"}}},
                "then": _obj({"ttft_ms": SPREAD, "prompt_tok_s": SPREAD, "gen_tok_s": SPREAD}),
            }
        ),
    }
)
QUANTISATION = _obj(
    {
        "file": STR,
        "size_bytes": {"type": "integer", "minimum": 1},
        "ftype": INT,
        "file_type": INT_OR_NULL,
        "requantised_from": STR_OR_NULL,
        "quantise_s": NUM,
        "speed": _obj(
            {
                "threads": INT,
                "n_ctx": INT,
                "load_s": NUM,
                "rss_mib": NUM_OR_NULL,
                "peak_rss_mib": NUM_OR_NULL,
                "prompt_tok_s": SPREAD,
                "gen_tok_s": SPREAD,
                "runs": {"type": "array", "minItems": 1},
            }
        ),
        "score": {
            "oneOf": [
                {"type": "null"},
                _obj({"results": STR, "passes": INT, "eligible": INT, "pass_rate": NUM_OR_NULL, "failed": {}}),
            ]
        },
    }
)
QUANTISE = _obj(
    {
        "schema": {"const": "smeep-quantise/1"},
        **BASE,
        "cpu_flags": {"type": "array", "items": STR},
        "load_average": _obj({"before": {"type": "array"}, "after": {"type": ["array", "null"]}}),
        "llama_cpp": _obj({"llama_cpp_python": STR, "llama_version": STR, "system_info": STR}),
        "source": _obj({"path": STR, "sha256": STR, "size_bytes": INT, "type": STR_OR_NULL}),
        "requantised_from": STR_OR_NULL,
        "speed_settings": _obj({"prompt_tokens": INT, "gen_tokens": INT, "trials": INT, "threads": INT, "n_ctx": INT}),
        "score_settings": {"type": ["object", "null"]},
        "types": {"type": "array", "minItems": 1, "items": STR},
        "quantisations": _map(QUANTISATION),
    }
)
NOTEBOOK_RUN = {
    **_obj({"name": STR, "suite": {"enum": ["ladder", "suite"]}, "driver": {"enum": ["direct", "openclaw"]}}),
    "required": ["name", "suite", "driver", "ran", "results"],
    # A run that was made names its results file; one that was not says why.
    "if": {"properties": {"ran": {"const": True}}},
    "then": {"properties": {"results": STR}},
    "else": {"required": ["reason"], "properties": {"reason": {"type": "string", "minLength": 10}}},
}
NOTEBOOK = _obj(
    {
        "schema": {"const": "smeep-notebook/1"},
        "timestamp": BASE["timestamp"],
        "command": STR,
        "model": {"type": "object"},
        "settings": _obj({"repeats": INT, "max_tokens": INT}),
        "runs": {"type": "array", "minItems": 4, "items": NOTEBOOK_RUN},
        "throughput": _obj({"ran": {"type": "boolean"}}),
        "quantise": {
            **_obj({"ran": {"type": "boolean"}}),
            "if": {"properties": {"ran": {"const": False}}},
            "then": {"required": ["reason"], "properties": {"reason": {"type": "string", "minLength": 10}}},
        },
        "environment": STR,
        "upstream": STR,
    }
)
ENVIRONMENT = _obj(
    {
        "schema": {"const": "smeep-environment/1"},
        "hardware": HARDWARE,
        "cpu_flags": {"type": "array", "items": STR},
        "cpu_flags_simd": {"type": "array", "items": STR},
        "load_average": _obj({"before": {"type": "array"}, "after": {"type": "array"}}),
        "python": _obj({"version": STR}),
        "packages": _map(STR_OR_NULL),
        "llama_cpp": {"type": ["object", "null"]},
    }
)
UPSTREAM = _obj(
    {
        "schema": {"const": "smeep-upstream/1"},
        "label": {"type": "string", "pattern": "^upstream"},
        "source": {"type": "string", "minLength": 20},
        "harness": STR,
        "hardware": STR,
        "rows": {
            "type": "array",
            "minItems": 1,
            "items": _obj({"model": STR, "passes": INT, "total": {"type": "integer", "minimum": 1}}),
        },
    }
)
SCHEMAS: dict[str, dict[str, Any]] = {
    "smeep-results/1": RESULTS,
    "smeep-throughput/1": THROUGHPUT,
    "smeep-quantise/1": QUANTISE,
    "smeep-notebook/1": NOTEBOOK,
    "smeep-environment/1": ENVIRONMENT,
    "smeep-upstream/1": UPSTREAM,
}


def errors(document: dict[str, Any]) -> list[str]:
    """What is wrong with the document against its schema (empty: valid). Needs jsonschema (the MCP SDK's)."""
    import jsonschema

    schema = SCHEMAS.get(str(document.get("schema")))
    if schema is None:
        return [f"unknown schema {document.get('schema')!r}"]
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(document)]
