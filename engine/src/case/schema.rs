//! The case format as a JSON Schema (draft 2020-12), generated from the
//! types that read it, so the schema, the reader and the docs cannot drift.
//!
//! The schema describes the *shape* of a case document: its sections, each
//! asset type's fields with their types, defaults and descriptions. The
//! rules between fields (a thermal unit names one fuel source, a reserve's
//! bus exists, a series has one value per step) are the reader's, which
//! reports them with their paths; a document the schema accepts may still be
//! refused by [`CaseReader`](super::CaseReader), never the other way round.

use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::profile_spec::ProfileSpec;
use super::{Settings, TimeSpec};
use crate::asset::{Converter, Grid, Load, Renewable, Reserve, Storage, ThermalSpec};
use crate::network::{Bus, Carrier};

/// The pattern every id matches (see [`is_valid_id`](crate::is_valid_id)).
pub const ID_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$";

/// The JSON Schema of a case document, as `docs/case.schema.json` publishes
/// it and the Python package returns it.
#[must_use]
pub fn json_schema() -> Value {
    let mut generator = SchemaGenerator::new(SchemaSettings::draft2020_12());
    let time = generator.subschema_for::<TimeSpec>();
    let settings = generator.subschema_for::<Settings>();
    let carrier = generator.subschema_for::<Carrier>();
    let bus = generator.subschema_for::<Bus>();
    let reserve = generator.subschema_for::<Reserve<ProfileSpec>>();
    let kinds = [
        ("load", generator.subschema_for::<Load<ProfileSpec>>()),
        ("renewable", generator.subschema_for::<Renewable<ProfileSpec>>()),
        ("thermal", generator.subschema_for::<ThermalSpec<ProfileSpec>>()),
        ("grid", generator.subschema_for::<Grid<ProfileSpec>>()),
        ("converter", generator.subschema_for::<Converter<ProfileSpec>>()),
        ("storage", generator.subschema_for::<Storage>()),
    ];
    let asset_id = generator.subschema_for::<crate::AssetId>();
    let mut defs: Map<String, Value> = generator.take_definitions(true).into_iter().collect();

    // An asset is its type's fields plus `id` and `type`: add those to each
    // type's (closed) object, and choose among the types by `type`.
    let mut one_of = Vec::new();
    for (tag, reference) in kinds {
        let reference = reference.to_value();
        if let Some(def) = def_name(&reference).and_then(|name| defs.get_mut(name)) {
            if let Some(properties) = def.get_mut("properties").and_then(Value::as_object_mut) {
                properties.insert(
                    "id".into(),
                    json!({ "$ref": ref_of(&asset_id), "description": "Unique across all assets of the case." }),
                );
                properties.insert("type".into(), json!({ "const": tag, "description": "The asset type." }));
            }
            if let Some(required) = def.get_mut("required").and_then(Value::as_array_mut) {
                required.insert(0, json!("type"));
                required.insert(0, json!("id"));
            } else if let Some(object) = def.as_object_mut() {
                object.insert("required".into(), json!(["id", "type"]));
            }
        }
        one_of.push(reference);
    }
    for id in ["AssetId", "BusId", "CarrierId"] {
        if let Some(def) = defs.get_mut(id).and_then(Value::as_object_mut) {
            def.insert("pattern".into(), json!(ID_PATTERN));
            def.insert(
                "description".into(),
                json!("1 to 64 ASCII letters, digits, '_', '-' and '.', starting with a letter or digit."),
            );
        }
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Volta case",
        "description": "A planning case: a time grid, carriers, buses, assets, reserves and settings. TOML case files are the same document. See docs/case-format.md.",
        "type": "object",
        "additionalProperties": false,
        "required": ["time"],
        "properties": {
            "name": { "type": "string", "description": "A short name for reports." },
            "description": { "type": "string", "description": "Free text." },
            "time": time.to_value(),
            "settings": settings.to_value(),
            "carriers": { "type": "array", "items": carrier.to_value(), "description": "Carriers beyond the built-in electricity, heat, cooling, gas and hydrogen, or the built-ins with other data." },
            "buses": { "type": "array", "items": bus.to_value(), "description": "Nodes where one carrier balances at every step." },
            "assets": { "type": "array", "items": { "oneOf": one_of }, "description": "Everything that injects into or withdraws from a bus." },
            "reserves": { "type": "array", "items": reserve.to_value(), "description": "Spinning-reserve requirements." }
        },
        "$defs": defs
    })
}

fn def_name(reference: &Value) -> Option<&str> {
    reference.get("$ref")?.as_str()?.strip_prefix("#/$defs/")
}

fn ref_of(schema: &schemars::Schema) -> Value {
    schema.as_value().get("$ref").cloned().unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_type_is_a_closed_object_with_its_id_and_type() {
        let schema = json_schema();
        let kinds = schema["properties"]["assets"]["items"]["oneOf"].as_array().expect("oneOf");
        assert_eq!(kinds.len(), crate::AssetKind::<crate::Profile>::TYPE_NAMES.len());
        for kind in kinds {
            let name = def_name(kind).expect("a reference");
            let def = &schema["$defs"][name];
            assert_eq!(def["additionalProperties"], json!(false), "{name}");
            assert!(def["properties"]["type"]["const"].is_string(), "{name}");
            assert!(def["required"].as_array().is_some_and(|r| r.contains(&json!("id"))), "{name}");
        }
        assert_eq!(schema["$defs"]["BusId"]["pattern"], json!(ID_PATTERN));
    }
}
