//! Columns, affine expressions and constraints: a problem written once in
//! [`Col`]umns and [`Lin`]ear expressions that Volta can evaluate itself
//! (cost breakdowns, explanations, audits), and [`Lp::into_highs`] hands it
//! to HiGHS through good_lp's model builder. Binary columns can be *fixed*
//! instead of declared integer, which turns a MILP into the LP whose duals
//! are the marginal prices.

use good_lp::solvers::highs::highs;
use good_lp::{Expression, ProblemVariables, Variable, variable};

/// A column (variable) of the problem, indexing the solution vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Col(pub usize);

/// A row (constraint) of the problem, indexing the dual vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Row(pub usize);

/// An affine expression `Σ coef·col + constant`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lin {
    /// `(column, coefficient)` pairs; a column may appear more than once.
    pub terms: Vec<(Col, f64)>,
    /// The constant.
    pub constant: f64,
}

impl Lin {
    /// Zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The constant `value`.
    #[must_use]
    pub fn constant(value: f64) -> Self {
        Self { terms: Vec::new(), constant: value }
    }

    /// `coef·col`.
    #[must_use]
    pub fn term(col: Col, coef: f64) -> Self {
        Self { terms: vec![(col, coef)], constant: 0.0 }
    }

    /// Adds `coef·col` (skipped when `coef` is zero).
    pub fn add(&mut self, col: Col, coef: f64) -> &mut Self {
        if coef != 0.0 {
            self.terms.push((col, coef));
        }
        self
    }

    /// Adds `value` to the constant.
    pub fn add_constant(&mut self, value: f64) -> &mut Self {
        self.constant += value;
        self
    }

    /// Adds `scale·other`.
    pub fn add_lin(&mut self, other: &Lin, scale: f64) -> &mut Self {
        if scale != 0.0 {
            self.terms.extend(other.terms.iter().map(|&(c, v)| (c, v * scale)));
            self.constant += other.constant * scale;
        }
        self
    }

    /// This plus `scale·other`.
    #[must_use]
    pub fn with_lin(mut self, other: &Lin, scale: f64) -> Self {
        self.add_lin(other, scale);
        self
    }

    /// This plus `coef·col`.
    #[must_use]
    pub fn with(mut self, col: Col, coef: f64) -> Self {
        self.add(col, coef);
        self
    }

    /// The value at the column values `x`.
    #[must_use]
    pub fn eval(&self, x: &[f64]) -> f64 {
        self.terms.iter().map(|&(c, v)| v * x[c.0]).sum::<f64>() + self.constant
    }

    /// Whether it has no column terms.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// The sense of a constraint `lin ⋚ 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sense {
    /// `lin ≤ 0`.
    Le,
    /// `lin ≥ 0`.
    Ge,
    /// `lin = 0`.
    Eq,
}

#[derive(Debug, Clone)]
struct Constraint {
    lin: Lin,
    sense: Sense,
}

/// How binary columns are declared.
#[derive(Debug, Clone, Default)]
pub enum Integrality {
    /// As binaries: the model is a MILP.
    #[default]
    Integer,
    /// Fixed at the given values (in order of creation, rounded): an LP.
    Fixed(Vec<f64>),
}

/// Columns, rows and the integrality of a problem under construction.
pub struct Lp {
    vars: ProblemVariables,
    cols: Vec<Variable>,
    binaries: Vec<Col>,
    integrality: Integrality,
    rows: Vec<Constraint>,
}

impl std::fmt::Debug for Lp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lp").field("cols", &self.cols.len()).field("rows", &self.rows.len()).finish_non_exhaustive()
    }
}

impl Lp {
    /// An empty problem whose binaries are declared by `integrality`.
    #[must_use]
    pub fn new(integrality: Integrality) -> Self {
        Self { vars: ProblemVariables::new(), cols: Vec::new(), binaries: Vec::new(), integrality, rows: Vec::new() }
    }

    /// A continuous column in `[lo, hi]` (either may be infinite).
    pub fn col(&mut self, lo: f64, hi: f64) -> Col {
        let mut def = variable();
        if lo.is_finite() {
            def = def.min(lo);
        }
        if hi.is_finite() {
            def = def.max(hi);
        }
        self.push(def)
    }

    /// `n` continuous columns in `[lo, hi]`.
    pub fn cols(&mut self, n: usize, lo: f64, hi: f64) -> Vec<Col> {
        (0..n).map(|_| self.col(lo, hi)).collect()
    }

    /// A binary column, or a fixed or relaxed one (see [`Integrality`]).
    pub fn binary(&mut self) -> Col {
        let def = match &self.integrality {
            Integrality::Integer => variable().binary(),
            Integrality::Fixed(values) => {
                let v = values.get(self.binaries.len()).copied().unwrap_or(0.0).round().clamp(0.0, 1.0);
                variable().min(v).max(v)
            }
        };
        let col = self.push(def);
        self.binaries.push(col);
        col
    }

    fn push(&mut self, def: good_lp::VariableDefinition) -> Col {
        let col = Col(self.cols.len());
        self.cols.push(self.vars.add(def));
        col
    }

    /// Adds `lin ⋚ 0` and returns its row.
    pub fn constrain(&mut self, lin: Lin, sense: Sense) -> Row {
        let row = Row(self.rows.len());
        self.rows.push(Constraint { lin, sense });
        row
    }

    /// Adds `lin ≤ rhs`.
    pub fn le(&mut self, mut lin: Lin, rhs: f64) -> Row {
        lin.constant -= rhs;
        self.constrain(lin, Sense::Le)
    }

    /// Adds `lin ≥ rhs`.
    pub fn ge(&mut self, mut lin: Lin, rhs: f64) -> Row {
        lin.constant -= rhs;
        self.constrain(lin, Sense::Ge)
    }

    /// Adds `lin = rhs`.
    pub fn eq(&mut self, mut lin: Lin, rhs: f64) -> Row {
        lin.constant -= rhs;
        self.constrain(lin, Sense::Eq)
    }

    /// Columns so far.
    #[must_use]
    pub fn num_cols(&self) -> usize {
        self.cols.len()
    }

    /// Rows so far.
    #[must_use]
    pub fn num_rows(&self) -> usize {
        self.rows.len()
    }

    /// Whether any column is a declared binary.
    pub fn is_mip(&self) -> bool {
        matches!(self.integrality, Integrality::Integer) && !self.binaries.is_empty()
    }

    /// The binary columns, in order of creation.
    pub fn binaries(&self) -> &[Col] {
        &self.binaries
    }

    /// Hands the problem to HiGHS (through good_lp) with `objective` minimised.
    ///
    /// # Errors
    /// good_lp refused the problem.
    pub fn into_highs(self, objective: &Lin) -> Result<highs::Model, String> {
        let Self { vars, cols, rows, .. } = self;
        let expression = |lin: &Lin| {
            let mut e = Expression::with_capacity(lin.terms.len());
            for &(c, v) in &lin.terms {
                e.add_mul(v, cols[c.0]);
            }
            e + lin.constant
        };
        let mut problem = vars.minimise(expression(objective)).using(highs);
        for row in &rows {
            let e = expression(&row.lin);
            let constraint = match row.sense {
                Sense::Le => e.leq(0.0),
                Sense::Ge => e.geq(0.0),
                Sense::Eq => e.eq(0.0),
            };
            good_lp::SolverModel::add_constraint(&mut problem, constraint);
        }
        problem.try_into_inner().map_err(|e| e.to_string())
    }
}
