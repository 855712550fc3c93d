//! Profiles: attributes that are either constant or vary per time step.

use std::sync::Arc;

/// A numeric attribute that is the same at every step, or a series with one
/// value per step of the case's [`TimeGrid`](crate::TimeGrid).
///
/// This is PyPSA's "static or series". A checked [`Case`](crate::Case)
/// guarantees that every series has exactly one finite value per step.
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    /// The same value at every step.
    Constant(f64),
    /// One value per step.
    Series(Arc<[f64]>),
}

impl Profile {
    /// The value at step `t`. A series shorter than `t` (impossible in a
    /// checked case) yields its last value.
    #[must_use]
    pub fn at(&self, t: usize) -> f64 {
        match self {
            Self::Constant(v) => *v,
            Self::Series(values) => values.get(t).or_else(|| values.last()).copied().unwrap_or(0.0),
        }
    }

    /// The smallest value (over `len` steps for a constant).
    #[must_use]
    pub fn min(&self) -> f64 {
        match self {
            Self::Constant(v) => *v,
            Self::Series(values) => values.iter().copied().fold(f64::INFINITY, f64::min),
        }
    }

    /// The largest value.
    #[must_use]
    pub fn max(&self) -> f64 {
        match self {
            Self::Constant(v) => *v,
            Self::Series(values) => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// The sum over `len` steps.
    #[must_use]
    pub fn sum(&self, len: usize) -> f64 {
        match self {
            Self::Constant(v) => v * len as f64,
            Self::Series(values) => values.iter().sum(),
        }
    }

    /// Whether the profile is zero at every step.
    #[must_use]
    pub fn is_zero(&self) -> bool {
        match self {
            Self::Constant(v) => *v == 0.0,
            Self::Series(values) => values.iter().all(|v| *v == 0.0),
        }
    }

    /// The values over `len` steps.
    #[must_use]
    pub fn to_vec(&self, len: usize) -> Vec<f64> {
        (0..len).map(|t| self.at(t)).collect()
    }

    /// Applies `f` to every value.
    #[must_use]
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Self {
        match self {
            Self::Constant(v) => Self::Constant(f(*v)),
            Self::Series(values) => Self::Series(values.iter().map(|v| f(*v)).collect()),
        }
    }

    /// The first step `t < len` at which `pred` holds, with its value.
    pub fn find(&self, len: usize, pred: impl Fn(f64) -> bool) -> Option<(usize, f64)> {
        match self {
            Self::Constant(v) => pred(*v).then_some((0, *v)),
            Self::Series(values) => values.iter().take(len).copied().enumerate().find(|(_, v)| pred(*v)),
        }
    }
}

impl From<f64> for Profile {
    fn from(v: f64) -> Self {
        Self::Constant(v)
    }
}

impl From<Vec<f64>> for Profile {
    fn from(values: Vec<f64>) -> Self {
        Self::Series(values.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_and_series() {
        let c = Profile::Constant(2.0);
        assert_eq!(c.at(99), 2.0);
        assert_eq!(c.sum(3), 6.0);
        let s = Profile::from(vec![1.0, -1.0, 3.0]);
        assert_eq!((s.min(), s.max(), s.sum(3)), (-1.0, 3.0, 3.0));
        assert_eq!(s.find(3, |v| v < 0.0), Some((1, -1.0)));
        assert_eq!(s.map(|v| v * 2.0).to_vec(3), vec![2.0, -2.0, 6.0]);
        assert!(Profile::from(vec![0.0, 0.0]).is_zero());
    }
}
