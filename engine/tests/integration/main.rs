//! Integration tests of volta-engine, built as one binary.

mod docs;
mod example_cases;
mod grid_properties;
mod invalid_cases;
mod no_panic;
mod rules;
mod support;
