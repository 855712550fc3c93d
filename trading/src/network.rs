//! The network a market clears over: nodes, and lines between them with a
//! capacity per interval and a fee per kWh carried.
//!
//! It is data shared by the welfare clearing of a book given in a call
//! ([`crate::welfare::clear`]) and by a stored market whose rules clear
//! each product over it ([`crate::product::Matching::Welfare`]).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use volta_contracts::Energy;

use crate::error::TradingError;
use crate::price::Price;

/// A node of the network.
pub type NodeId = String;

/// The most nodes of a network.
pub const MAX_NODES: usize = 10_000;

/// The most lines of a network.
pub const MAX_LINES: usize = 100_000;

/// The most energy a line may carry in an interval: a terawatt-hour, the
/// most an order may ask for.
pub const MAX_CAPACITY: Energy = Energy::from_wh(1_000_000_000_000);

/// The longest name of a node or a line, in bytes.
pub const MAX_NAME: usize = 64;

/// A line between two nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Its name.
    pub id: String,
    /// One end.
    pub from: NodeId,
    /// The other end.
    pub to: NodeId,
    /// The most energy it carries in an interval, each way, Wh.
    pub capacity: Energy,
    /// The grid fee per kWh carried, either way.
    #[serde(default)]
    pub fee: Price,
}

impl Line {
    /// A line `id` from `from` to `to` carrying up to `capacity` each way
    /// in an interval, with no fee.
    #[must_use]
    pub fn new(id: &str, from: &str, to: &str, capacity: Energy) -> Self {
        Self { id: id.to_owned(), from: from.to_owned(), to: to.to_owned(), capacity, fee: Price::ZERO }
    }
}

/// The network: nodes and lines. One node and no lines is a single zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The nodes.
    pub nodes: Vec<NodeId>,
    /// The lines.
    #[serde(default)]
    pub lines: Vec<Line>,
}

impl Network {
    /// One node, no lines.
    #[must_use]
    pub fn single(node: &str) -> Self {
        Self { nodes: vec![node.to_owned()], lines: Vec::new() }
    }

    /// Whether `node` is one of the nodes.
    #[must_use]
    pub fn has(&self, node: &str) -> bool {
        self.nodes.iter().any(|n| n == node)
    }

    /// Checks the network and returns its nodes as a set: at least one
    /// node, none repeated or unnamed, lines between two different known
    /// nodes with a capacity and fee in range, within the size budgets.
    ///
    /// # Errors
    /// [`TradingError::Invalid`] naming the field (`network.nodes[2]`,
    /// `network.lines[0].capacity`, ...).
    pub fn check(&self) -> Result<HashSet<&str>, TradingError> {
        crate::at_most("network.nodes", self.nodes.len(), MAX_NODES)?;
        crate::at_most("network.lines", self.lines.len(), MAX_LINES)?;
        if self.nodes.is_empty() {
            return Err(TradingError::invalid("network.nodes", "no node"));
        }
        let named = |field: String, name: &str| {
            if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
                Err(TradingError::invalid(field, format!("{name:?}; 1 to {MAX_NAME} bytes of printable text")))
            } else {
                Ok(())
            }
        };
        let mut nodes = HashSet::with_capacity(self.nodes.len());
        for (i, n) in self.nodes.iter().enumerate() {
            named(format!("network.nodes[{i}]"), n)?;
            if !nodes.insert(n.as_str()) {
                return Err(TradingError::invalid(format!("network.nodes[{i}]"), format!("{n:?} is repeated")));
            }
        }
        let mut lines = HashSet::with_capacity(self.lines.len());
        for (i, l) in self.lines.iter().enumerate() {
            named(format!("network.lines[{i}].id"), &l.id)?;
            if !lines.insert(l.id.as_str()) {
                return Err(TradingError::invalid(format!("network.lines[{i}].id"), format!("{:?} is repeated", l.id)));
            }
            for (end, node) in [("from", &l.from), ("to", &l.to)] {
                if !nodes.contains(node.as_str()) {
                    return Err(TradingError::invalid(
                        format!("network.lines[{i}].{end}"),
                        format!("{node:?} is not a node of the network"),
                    ));
                }
            }
            if l.from == l.to {
                return Err(TradingError::invalid(
                    format!("network.lines[{i}].to"),
                    "a line joins two different nodes",
                ));
            }
            if l.capacity < Energy::ZERO || l.capacity > MAX_CAPACITY {
                return Err(TradingError::invalid(
                    format!("network.lines[{i}].capacity"),
                    format!("{} kWh", l.capacity),
                ));
            }
            if l.fee < Price::ZERO || l.fee > Price::LIMIT {
                return Err(TradingError::invalid(
                    format!("network.lines[{i}].fee"),
                    format!("{} is not a fee", l.fee),
                ));
            }
        }
        Ok(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, from: &str, to: &str) -> Line {
        Line::new(id, from, to, Energy::from_wh(5_000))
    }

    #[test]
    fn a_bad_network_is_refused_on_its_field() {
        let good = Network { nodes: vec!["a".into(), "b".into()], lines: vec![line("ab", "a", "b")] };
        assert_eq!(good.check().expect("good").len(), 2);
        let cases = [
            (Network { nodes: Vec::new(), lines: Vec::new() }, "network.nodes"),
            (Network { nodes: vec!["a".into(), "a".into()], lines: Vec::new() }, "network.nodes[1]"),
            (Network { nodes: vec![String::new()], lines: Vec::new() }, "network.nodes[0]"),
            (Network { lines: vec![line("ab", "a", "c")], ..good.clone() }, "network.lines[0].to"),
            (Network { lines: vec![line("aa", "a", "a")], ..good.clone() }, "network.lines[0].to"),
            (
                Network { lines: vec![line("ab", "a", "b"), line("ab", "b", "a")], ..good.clone() },
                "network.lines[1].id",
            ),
            (
                Network { lines: vec![Line { capacity: Energy::from_wh(-1), ..line("ab", "a", "b") }], ..good.clone() },
                "network.lines[0].capacity",
            ),
            (
                Network { lines: vec![Line { fee: Price::from_micros(-1), ..line("ab", "a", "b") }], ..good },
                "network.lines[0].fee",
            ),
        ];
        for (network, field) in cases {
            let error = network.check().expect_err(field).to_string();
            assert!(error.starts_with(&format!("{field}:")), "{field}: {error}");
        }
    }
}
