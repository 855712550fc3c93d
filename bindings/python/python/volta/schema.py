"""The case format, discoverable from Python.

>>> volta.fields()                 # every asset type and section, described
>>> volta.fields("storage")        # one table: field, type, unit, required, default, description
>>> volta.schema()                 # the JSON Schema itself (draft 2020-12)

Both come from the one schema the core generates from the types it reads
cases with; it is published as ``docs/case.schema.json``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from . import _native

# Units read off field names, longest suffix first.
_UNITS = (
    ("_kg_per_kwh", "kg/kWh"),
    ("_kw_per_h", "kW/h"),
    ("_per_kwh", "currency/kWh"),
    ("_per_kg", "currency/kg"),
    ("_per_h", "1/h"),
    ("_kwh", "kWh"),
    ("_kw", "kW"),
    ("_h", "h"),
    ("_c", "°C"),
)
# Sections of a case that are tables or lists of tables.
_SECTIONS = {"time": "TimeSpec", "settings": "Settings", "carriers": "Carrier", "buses": "Bus", "reserves": "Reserve"}


@lru_cache(maxsize=1)
def _schema() -> str:
    return _native.case_schema()


def schema() -> dict[str, Any]:
    """The case format as a JSON Schema (draft 2020-12): every section and
    asset type with its fields, types, defaults and descriptions. Editors
    and ``jsonschema`` can check a case document against it. It describes
    the shape of a case; rules between fields (one fuel source, a series
    with one value per step) are checked by :class:`volta.Case`."""
    return json.loads(_schema())


def _asset_types(s: dict[str, Any]) -> dict[str, str]:
    """Asset type name -> its definition's name."""
    out = {}
    for option in s["properties"]["assets"]["items"]["oneOf"]:
        name = option["$ref"].rsplit("/", 1)[1]
        out[s["$defs"][name]["properties"]["type"]["const"]] = name
    return out


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[1]
        return {
            "Profile": "number or series",
            "BusId": "bus id",
            "CarrierId": "carrier id",
            "AssetId": "asset id",
        }.get(name, name)
    if "anyOf" in prop:
        kinds = [_type(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(kinds)
    if "const" in prop:
        return json.dumps(prop["const"])
    kind = prop.get("type", "")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if isinstance(kind, list):
        return " or ".join(k for k in kind if k != "null")
    return {"number": "number", "integer": "integer", "boolean": "bool", "string": "text"}.get(kind, str(kind))


def _unit(name: str, description: str) -> str:
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return unit
    if re.search(r"per kWh", description):
        return "currency/kWh"
    if re.search(r"fraction|share|efficiency", description, re.IGNORECASE):
        return "1"
    return ""


def _rows(definition: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(definition.get("required", []))
    rows = []
    for name, prop in definition.get("properties", {}).items():
        description = " ".join(prop.get("description", "").split())
        rows.append(
            {
                "field": name,
                "type": _type(prop),
                "unit": _unit(name, description),
                "required": name in required,
                "default": prop.get("default"),
                "description": description,
            }
        )
    return rows


def fields(kind: str | None = None):
    """The fields of an asset type (``load``, ``renewable``, ``thermal``,
    ``grid``, ``converter``, ``storage``), of a case section (``time``,
    ``settings``, ``carriers``, ``buses``, ``reserves``) or of a sub-table
    (``commitment``, ``curtailable``, ...), as a pandas DataFrame indexed by
    field: type, unit, required, default and description. Without ``kind``:
    every asset type and section with its description."""
    import pandas as pd

    s = schema()
    defs = s["$defs"]
    assets = _asset_types(s)
    if kind is None:
        rows = [
            {"kind": k, "section": "assets", "description": defs[d].get("description", "").split("\n")[0]}
            for k, d in assets.items()
        ]
        rows += [
            {"kind": k, "section": k, "description": s["properties"][k].get("description", defs[d].get("description", ""))}
            for k, d in _SECTIONS.items()
        ]
        return pd.DataFrame(rows).set_index("kind")
    by_name = {name.lower(): name for name in defs}
    definition = assets.get(kind) or _SECTIONS.get(kind) or by_name.get(kind.replace("_", "").lower())
    if definition is None or "properties" not in defs[definition]:
        known = sorted(
            set(assets) | set(_SECTIONS) | {n.lower() for n, d in defs.items() if "properties" in d}
        )
        raise ValueError(f"{kind!r} is not an asset type, section or table of a case; try one of {', '.join(known)}")
    frame = pd.DataFrame(_rows(defs[definition])).set_index("field")
    frame.attrs["description"] = defs[definition].get("description", "")
    return frame
