//! How a profile is written in a case file.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::profile::Profile;

/// A profile as written in a case file: a number, an inline array with one
/// value per step, or a column of a CSV or Parquet file.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileSpec {
    /// `capacity_kw = 500`
    Constant(f64),
    /// `demand_kw = [120.0, 118.5, ...]`
    Inline(Vec<f64>),
    /// `demand_kw = { file = "loads.csv", column = "office_kw" }`
    File(FileRef),
}

/// A column of a CSV or Parquet file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// Path relative to the case file (`.csv` or `.parquet`).
    pub file: PathBuf,
    /// The column holding the values.
    pub column: String,
    /// A column of timestamps: rows are then matched to the grid's steps by
    /// time (the file may cover more than the grid). Without it the column
    /// must have exactly one row per step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// A factor applied to every value (default 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub scale: f64,
}

impl schemars::JsonSchema for ProfileSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Profile".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let file = generator.subschema_for::<FileRef>();
        schemars::json_schema!({
            "description": "A number (the same at every step), an array with one number per step of the time grid, or a column of a CSV or Parquet file.",
            "anyOf": [
                { "type": "number" },
                { "type": "array", "items": { "type": "number" } },
                file
            ]
        })
    }
}

fn one() -> f64 {
    1.0
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_one(v: &f64) -> bool {
    *v == 1.0
}

impl From<f64> for ProfileSpec {
    fn from(v: f64) -> Self {
        Self::Constant(v)
    }
}

impl From<&Profile> for ProfileSpec {
    fn from(p: &Profile) -> Self {
        match p {
            Profile::Constant(v) => Self::Constant(*v),
            Profile::Series(values) => Self::Inline(values.to_vec()),
        }
    }
}

impl Serialize for ProfileSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Constant(v) => s.serialize_f64(*v),
            Self::Inline(values) => values.serialize(s),
            Self::File(file) => file.serialize(s),
        }
    }
}

impl Serialize for Profile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Constant(v) => s.serialize_f64(*v),
            Self::Series(values) => values.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ProfileSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ProfileVisitor)
    }
}

struct ProfileVisitor;

impl<'de> Visitor<'de> for ProfileVisitor {
    type Value = ProfileSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, an array of numbers, or a table { file, column }")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ProfileSpec, E> {
        Ok(ProfileSpec::Constant(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ProfileSpec, E> {
        Ok(ProfileSpec::Constant(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ProfileSpec, E> {
        Ok(ProfileSpec::Constant(v as f64))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ProfileSpec, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element::<f64>()? {
            values.push(v);
        }
        Ok(ProfileSpec::Inline(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ProfileSpec, A::Error> {
        FileRef::deserialize(de::value::MapAccessDeserializer::new(map)).map(ProfileSpec::File)
    }
}
