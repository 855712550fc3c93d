//! Whatever the input, reading a case returns a value or an error: never a
//! panic. Random documents, and valid cases with one field replaced by a
//! random value.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use volta_engine::{CaseReader, Format};

use crate::support::BASE;

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "[a-z_0-9:.T-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every (path to a leaf or table) of a document, as key/index steps.
fn paths(value: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                prefix.push(json!(k));
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(json!(i));
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

fn replace(doc: &mut Value, path: &[Value], new: Value) {
    let mut at = doc;
    for step in path {
        at = match (at, step) {
            (Value::Object(map), Value::String(k)) => map.get_mut(k).expect("path exists"),
            (Value::Array(items), Value::Number(i)) => {
                let i = usize::try_from(i.as_u64().expect("index")).expect("index");
                &mut items[i]
            }
            _ => unreachable!("paths() only yields existing steps"),
        };
    }
    *at = new;
}

fn base_document() -> Value {
    let case = volta_engine::Case::from_str(BASE, Format::Toml).expect("valid base");
    serde_json::to_value(case.to_document()).expect("document")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_documents_never_panic(doc in any_json()) {
        let _ = CaseReader::new().read_value(doc);
    }

    #[test]
    fn random_tables_as_cases_never_panic(fields in prop::collection::btree_map("(name|time|buses|assets|settings|carriers|reserves)", any_json(), 0..7)) {
        let doc: Map<String, Value> = fields.into_iter().collect();
        let _ = CaseReader::new().read_value(Value::Object(doc));
    }

    #[test]
    fn one_mutated_field_never_panics(pick in any::<prop::sample::Index>(), new in any_json()) {
        let mut doc = base_document();
        let mut all = Vec::new();
        paths(&doc, &mut Vec::new(), &mut all);
        let path = pick.get(&all).clone();
        replace(&mut doc, &path, new);
        let text = serde_json::to_string(&doc).expect("json");
        let _ = CaseReader::new().read_str(&text, Format::Json);
    }
}
