//! Validation reports: every problem of a case, each with its path.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How serious an [`Issue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Suspicious but solvable; an error under `strict` checking.
    Warning,
    /// The case cannot be used.
    Error,
}

/// What kind of problem an [`Issue`] is. Stable across versions, so that
/// callers (the gRPC layer, Python) can match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueCode {
    /// A field that the schema does not have.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A value of the wrong type.
    WrongType,
    /// An asset `type` that does not exist.
    UnknownAssetType,
    /// An id that is empty or has forbidden characters.
    InvalidId,
    /// Two items with the same id.
    DuplicateId,
    /// A reference to a bus that does not exist.
    UnknownBus,
    /// A reference to a carrier that does not exist.
    UnknownCarrier,
    /// A bus whose carrier does not suit the asset connected to it.
    CarrierMismatch,
    /// A value below zero where that makes no sense.
    Negative,
    /// A value outside its allowed range.
    OutOfRange,
    /// An efficiency outside [0.001, 1].
    Efficiency,
    /// A NaN or infinite value.
    NotFinite,
    /// A series whose length does not match the time grid.
    SeriesLength,
    /// A referenced file does not exist or cannot be read.
    File,
    /// A column missing from a referenced file.
    MissingColumn,
    /// A cell of a referenced file that is not a number or a time.
    BadCell,
    /// A time grid that cannot be built.
    TimeGrid,
    /// Fields that exclude each other, or an alternative of which none is given.
    Conflict,
    /// Bounds that contradict each other (minimum above maximum, ...).
    Inconsistent,
    /// A bus with demand but nothing that can supply it, or the reverse.
    Unbalanceable,
    /// A fuel curve that is not convex and increasing.
    NonConvex,
    /// Something declared but never used.
    Unused,
    /// A combination that is legal but likely not what was meant.
    Suspicious,
}

impl fmt::Display for IssueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        f.write_str(&text)
    }
}

/// One problem found in a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Where: `assets.chp1.min_up_h`, `buses[2].carrier`, `time.step`.
    pub path: String,
    /// What kind of problem.
    pub code: IssueCode,
    /// A sentence for people.
    pub message: String,
    /// How serious.
    pub severity: Severity,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        let path = if self.path.is_empty() { "(case)" } else { &self.path };
        write!(f, "{path}: {}", self.message)
    }
}

/// Every problem found in a case, errors and warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// The problems, in the order of the case file.
    pub issues: Vec<Issue>,
}

impl ValidationReport {
    /// Records an error.
    pub fn error(&mut self, path: impl Into<String>, code: IssueCode, message: impl Into<String>) {
        self.push(path, code, message, Severity::Error);
    }

    /// Records a warning.
    pub fn warn(&mut self, path: impl Into<String>, code: IssueCode, message: impl Into<String>) {
        self.push(path, code, message, Severity::Warning);
    }

    fn push(&mut self, path: impl Into<String>, code: IssueCode, message: impl Into<String>, severity: Severity) {
        self.issues.push(Issue { path: path.into(), code, message: message.into(), severity });
    }

    /// Whether any issue is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.issues.iter().any(|i| i.severity == Severity::Error)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Issue> {
        self.issues.iter().filter(|i| i.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Issue> {
        self.issues.iter().filter(|i| i.severity == Severity::Warning)
    }

    /// Turns every warning into an error.
    pub fn make_strict(&mut self) {
        for issue in &mut self.issues {
            issue.severity = Severity::Error;
        }
    }

    /// Whether there is no issue at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors().count();
        write!(f, "the case has {n} problem{}", if n == 1 { "" } else { "s" })?;
        for issue in &self.issues {
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}

/// Builds issue paths: `assets.chp1.commitment.min_up_h`, `buses[2]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn root(name: &str) -> Self {
        Self(name.to_owned())
    }

    /// The path of the `index`-th item of a list, named by its id when it
    /// has a usable one.
    pub(crate) fn item(list: &str, index: usize, id: Option<&str>) -> Self {
        match id {
            Some(id) if crate::ids::is_valid_id(id) => Self(format!("{list}.{id}")),
            _ => Self(format!("{list}[{index}]")),
        }
    }

    pub(crate) fn field(&self, name: &str) -> String {
        if self.0.is_empty() { name.to_owned() } else { format!("{}.{name}", self.0) }
    }

    pub(crate) fn child(&self, name: &str) -> Self {
        Self(self.field(name))
    }

    pub(crate) fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}
