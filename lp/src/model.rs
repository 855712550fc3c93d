//! Columns, affine expressions and constraints: a problem written once in
//! [`Col`]umns and [`Lin`]ear expressions that Volta can evaluate itself
//! (cost breakdowns, explanations, audits), and [`Lp::into_highs`] hands it
//! to HiGHS, column by column and row by row. Integer columns (binaries, and
//! the counts of a fleet of identical units) can be *fixed* instead of
//! declared integer, which turns a MILP into the LP whose duals are the
//! marginal prices.

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

/// How integer columns are declared.
#[derive(Debug, Clone, Default)]
pub enum Integrality {
    /// As integers: the model is a MILP.
    #[default]
    Integer,
    /// Fixed at the given values (in order of creation, rounded into each
    /// column's bounds): an LP.
    Fixed(Vec<f64>),
    /// Continuous within their bounds: the LP relaxation, whose optimum
    /// bounds the MILP's from below.
    Relaxed,
}

/// What a column's values may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Continuous,
    Binary,
    /// An integer between its bounds.
    Integer,
}

/// Columns, rows and the integrality of a problem under construction.
pub struct Lp {
    /// Binary and integer columns, in order of creation.
    integers: Vec<Col>,
    integrality: Integrality,
    rows: Vec<Constraint>,
    /// Per column: lower and upper bound, and what its values may be.
    bounds: Vec<(f64, f64, Kind)>,
    /// Names for people reading a written model: `scope(k)`.
    col_names: Vec<String>,
    row_names: Vec<String>,
    /// Put before every scope (e.g. a scenario's `s3.`).
    prefix: String,
    /// The current scope, and per scope how many columns and rows it named.
    scope: String,
    named: std::collections::HashMap<String, (usize, usize)>,
}

impl std::fmt::Debug for Lp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lp").field("cols", &self.bounds.len()).field("rows", &self.rows.len()).finish_non_exhaustive()
    }
}

impl Lp {
    /// An empty problem whose integer columns are declared by `integrality`.
    #[must_use]
    pub fn new(integrality: Integrality) -> Self {
        Self {
            integers: Vec::new(),
            integrality,
            rows: Vec::new(),
            bounds: Vec::new(),
            col_names: Vec::new(),
            row_names: Vec::new(),
            prefix: String::new(),
            scope: "x".to_owned(),
            named: std::collections::HashMap::new(),
        }
    }

    /// Names what is created next: columns and rows are called `scope(k)`,
    /// `k` counting from 0 in the scope (columns and rows apart), in a
    /// written model ([`Lp::write_lp`]). Characters an LP file does not
    /// take become `_`.
    pub fn scope(&mut self, scope: &str) {
        self.scope = self
            .prefix
            .chars()
            .chain(scope.chars())
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') { c } else { '_' })
            .collect();
    }

    /// Puts `prefix` before every later scope: the columns of one scenario
    /// of a stochastic model are `s3.battery.charge(5)`.
    pub fn prefix(&mut self, prefix: &str) {
        prefix.clone_into(&mut self.prefix);
    }

    fn next_name(&mut self, row: bool) -> String {
        let counts = self.named.entry(self.scope.clone()).or_default();
        let k = if row { &mut counts.1 } else { &mut counts.0 };
        let name = format!("{}({k})", self.scope);
        *k += 1;
        name
    }

    /// A continuous column in `[lo, hi]` (either may be infinite).
    pub fn col(&mut self, lo: f64, hi: f64) -> Col {
        self.push((lo, hi, Kind::Continuous))
    }

    /// `n` continuous columns in `[lo, hi]`.
    pub fn cols(&mut self, n: usize, lo: f64, hi: f64) -> Vec<Col> {
        (0..n).map(|_| self.col(lo, hi)).collect()
    }

    /// A binary column, or a fixed one (see [`Integrality`]).
    pub fn binary(&mut self) -> Col {
        self.integer_in(1, Kind::Binary)
    }

    /// An integer column in `[0, hi]` (how many units of a fleet are on),
    /// or a fixed one (see [`Integrality`]).
    pub fn integer(&mut self, hi: u32) -> Col {
        self.integer_in(hi, Kind::Integer)
    }

    fn integer_in(&mut self, hi: u32, kind: Kind) -> Col {
        let hi = f64::from(hi);
        let bounds = match &self.integrality {
            Integrality::Integer => (0.0, hi, kind),
            Integrality::Fixed(values) => {
                let v = fixed_value(values.get(self.integers.len()).copied().unwrap_or(0.0), hi);
                (v, v, Kind::Continuous)
            }
            Integrality::Relaxed => (0.0, hi, Kind::Continuous),
        };
        let col = self.push(bounds);
        self.integers.push(col);
        col
    }

    fn push(&mut self, bounds: (f64, f64, Kind)) -> Col {
        let col = Col(self.bounds.len());
        self.bounds.push(bounds);
        let name = self.next_name(false);
        self.col_names.push(name);
        col
    }

    /// Adds `lin ⋚ 0` and returns its row.
    pub fn constrain(&mut self, lin: Lin, sense: Sense) -> Row {
        let row = Row(self.rows.len());
        self.rows.push(Constraint { lin, sense });
        let name = self.next_name(true);
        self.row_names.push(name);
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
        self.bounds.len()
    }

    /// Rows so far.
    #[must_use]
    pub fn num_rows(&self) -> usize {
        self.rows.len()
    }

    /// Whether any column is a declared integer.
    pub fn is_mip(&self) -> bool {
        matches!(self.integrality, Integrality::Integer) && !self.integers.is_empty()
    }

    /// The integer columns (binaries included), in order of creation: the
    /// order [`Integrality::Fixed`] takes their values in.
    pub fn integers(&self) -> &[Col] {
        &self.integers
    }

    /// Writes the problem with `objective` minimised in the CPLEX LP format
    /// (read by HiGHS, Gurobi, CPLEX, SCIP, GLPK, ...): the exact model
    /// [`Lp::into_highs`] hands to HiGHS, each column and row under its
    /// [`Lp::scope`] name, every bound written out.
    ///
    /// # Errors
    /// When `out` fails.
    pub fn write_lp(&self, objective: &Lin, title: &str, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let num = |v: f64| {
            if v == f64::INFINITY {
                "+inf".to_owned()
            } else if v == f64::NEG_INFINITY {
                "-inf".to_owned()
            } else {
                format!("{v:?}")
            }
        };
        let write_terms = |out: &mut dyn std::io::Write, lin: &Lin| -> std::io::Result<()> {
            let list = merged_terms(lin);
            if list.is_empty() {
                write!(out, " 0 {}", self.col_names.first().map_or("x", String::as_str))?;
            }
            for (k, (c, v)) in list.iter().enumerate() {
                // Long rows wrap: LP readers limit line length.
                if k > 0 && k % 8 == 0 {
                    write!(out, "\n   ")?;
                }
                let sign = if *v < 0.0 { '-' } else { '+' };
                write!(out, " {sign} {} {}", num(v.abs()), self.col_names[*c])?;
            }
            Ok(())
        };
        for line in title.lines() {
            writeln!(out, "\\ {line}")?;
        }
        writeln!(out, "Minimize")?;
        write!(out, " obj:")?;
        write_terms(out, objective)?;
        if objective.constant != 0.0 {
            let sign = if objective.constant < 0.0 { '-' } else { '+' };
            write!(out, " {sign} {}", num(objective.constant.abs()))?;
        }
        writeln!(out, "\nSubject To")?;
        for (row, name) in self.rows.iter().zip(&self.row_names) {
            write!(out, " {name}:")?;
            write_terms(out, &row.lin)?;
            let op = match row.sense {
                Sense::Le => "<=",
                Sense::Ge => ">=",
                Sense::Eq => "=",
            };
            writeln!(out, " {op} {}", num(-row.lin.constant + 0.0))?;
        }
        writeln!(out, "Bounds")?;
        for ((lo, hi, kind), name) in self.bounds.iter().zip(&self.col_names) {
            if *kind != Kind::Binary {
                writeln!(out, " {} <= {name} <= {}", num(*lo), num(*hi))?;
            }
        }
        for (kind, section) in [(Kind::Integer, "General"), (Kind::Binary, "Binaries")] {
            let names: Vec<&String> =
                self.bounds.iter().zip(&self.col_names).filter(|((_, _, k), _)| *k == kind).map(|(_, n)| n).collect();
            if !names.is_empty() {
                writeln!(out, "{section}")?;
                for name in names {
                    writeln!(out, " {name}")?;
                }
            }
        }
        writeln!(out, "End")
    }

    /// Writes the problem with `objective` minimised in the free MPS format
    /// (read by every LP/MILP solver): the same model as [`Lp::write_lp`],
    /// column by column, names unchanged (free MPS takes any name without
    /// spaces), integer columns between `MARKER` lines with their bounds
    /// written out, the objective's constant as the negated right-hand side
    /// of the objective row.
    ///
    /// # Errors
    /// When `out` fails.
    pub fn write_mps(&self, objective: &Lin, title: &str, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let num = |v: f64| format!("{v:?}");
        // Column by column: the objective's coefficient, then each row's.
        let mut entries: Vec<Vec<(&str, f64)>> = vec![Vec::new(); self.bounds.len()];
        for (c, v) in merged_terms(objective) {
            entries[c].push(("obj", v));
        }
        for (row, name) in self.rows.iter().zip(&self.row_names) {
            for (c, v) in merged_terms(&row.lin) {
                entries[c].push((name.as_str(), v));
            }
        }
        for line in title.lines() {
            writeln!(out, "* {line}")?;
        }
        writeln!(out, "NAME volta")?;
        writeln!(out, "ROWS")?;
        writeln!(out, " N obj")?;
        for (row, name) in self.rows.iter().zip(&self.row_names) {
            let kind = match row.sense {
                Sense::Le => 'L',
                Sense::Ge => 'G',
                Sense::Eq => 'E',
            };
            writeln!(out, " {kind} {name}")?;
        }
        writeln!(out, "COLUMNS")?;
        let mut marker = 0;
        for ((name, (_, _, kind)), list) in self.col_names.iter().zip(&self.bounds).zip(&entries) {
            let integer = *kind != Kind::Continuous;
            if integer {
                writeln!(out, " MARKER{marker} 'MARKER' 'INTORG'")?;
            }
            if list.is_empty() {
                // A column in no row still belongs to the problem.
                writeln!(out, " {name} obj 0.0")?;
            }
            for (row, v) in list {
                writeln!(out, " {name} {row} {}", num(*v))?;
            }
            if integer {
                writeln!(out, " MARKER{marker} 'MARKER' 'INTEND'")?;
                marker += 1;
            }
        }
        writeln!(out, "RHS")?;
        if objective.constant != 0.0 {
            writeln!(out, " RHS obj {}", num(-objective.constant))?;
        }
        for (row, name) in self.rows.iter().zip(&self.row_names) {
            let rhs = -row.lin.constant + 0.0;
            if rhs != 0.0 {
                writeln!(out, " RHS {name} {}", num(rhs))?;
            }
        }
        writeln!(out, "BOUNDS")?;
        for ((lo, hi, kind), name) in self.bounds.iter().zip(&self.col_names) {
            match (*kind, *lo, *hi) {
                (Kind::Binary, _, _) => writeln!(out, " BV BND {name}")?,
                (_, lo, hi) if lo == hi => writeln!(out, " FX BND {name} {}", num(lo))?,
                (_, lo, hi) => {
                    if lo == f64::NEG_INFINITY {
                        writeln!(out, " MI BND {name}")?;
                    } else {
                        writeln!(out, " LO BND {name} {}", num(lo))?;
                    }
                    if hi == f64::INFINITY {
                        writeln!(out, " PL BND {name}")?;
                    } else {
                        writeln!(out, " UP BND {name} {}", num(hi))?;
                    }
                }
            }
        }
        writeln!(out, "ENDATA")
    }

    /// Hands the problem to HiGHS with `objective` minimised (its constant
    /// left out: HiGHS's objective is the linear part), columns and rows in
    /// the order they were made, a row's terms of one column added up.
    ///
    /// # Errors
    /// HiGHS refused the problem.
    pub fn into_highs(self, objective: &Lin) -> Result<highs::Model, String> {
        self.into_highs_with_cols(objective).map(|highs| highs.model)
    }

    /// [`Lp::into_highs`], with HiGHS's handle of every column (to change
    /// its bounds between solves) and the integer columns with their upper
    /// bounds.
    pub(crate) fn into_highs_with_cols(self, objective: &Lin) -> Result<Highs, String> {
        let Self { rows, bounds, integers, .. } = self;
        let integers = integers.iter().map(|&c| (c, bounds[c.0].1)).collect();
        let mut costs = vec![0.0; bounds.len()];
        for &(c, v) in &objective.terms {
            costs[c.0] += v;
        }
        let mut problem = highs::RowProblem::default();
        let cols: Vec<highs::Col> = bounds
            .iter()
            .zip(costs)
            .map(|(&(lo, hi, kind), cost)| problem.add_column_with_integrality(cost, lo..=hi, kind != Kind::Continuous))
            .collect();
        for row in rows {
            // The same terms a written model lists for the row.
            let merged = merged_terms(&row.lin).into_iter().map(|(c, v)| (cols[c], v));
            let rhs = -row.lin.constant + 0.0;
            match row.sense {
                Sense::Le => problem.add_row(..=rhs, merged),
                Sense::Ge => problem.add_row(rhs.., merged),
                Sense::Eq => problem.add_row(rhs..=rhs, merged),
            }
        }
        let model =
            problem.try_optimise(highs::Sense::Minimise).map_err(|e| format!("HiGHS refused the problem: {e:?}"))?;
        Ok(Highs { model, cols, integers })
    }
}

/// A problem handed to HiGHS, with the handles to change it.
pub(crate) struct Highs {
    pub(crate) model: highs::Model,
    /// HiGHS's handle of each column.
    pub(crate) cols: Vec<highs::Col>,
    /// The integer columns and their upper bounds.
    pub(crate) integers: Vec<(Col, f64)>,
}

/// The value an integer column of upper bound `hi` is fixed at for `value`:
/// the nearest whole number within `[0, hi]`.
pub(crate) fn fixed_value(value: f64, hi: f64) -> f64 {
    value.round().clamp(0.0, hi)
}

/// The terms of `lin` with each column's coefficients added up (in the
/// order they were added), in column order, zeros dropped: how a written
/// model lists a row or the objective, and what HiGHS is handed.
fn merged_terms(lin: &Lin) -> Vec<(usize, f64)> {
    let mut terms: Vec<(usize, f64)> = lin.terms.iter().map(|&(c, v)| (c.0, v)).collect();
    // Stable: a column's coefficients are summed in the order they came.
    terms.sort_by_key(|&(c, _)| c);
    let mut merged: Vec<(usize, f64)> = Vec::with_capacity(terms.len());
    for (c, v) in terms {
        match merged.last_mut() {
            Some((last, sum)) if *last == c => *sum += v,
            _ => merged.push((c, v)),
        }
    }
    merged.retain(|&(_, v)| v != 0.0);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_model_reads_as_the_problem_with_its_names_and_bounds() {
        let mut lp = Lp::new(Integrality::Integer);
        lp.scope("battery.charge");
        let c = lp.cols(2, 0.0, 5.0);
        lp.scope("chp-1.on");
        let on = lp.binary();
        lp.scope("boilers.on");
        let count = lp.integer(3);
        lp.scope("free");
        let f = lp.col(f64::NEG_INFINITY, f64::INFINITY);
        lp.scope("battery.storage");
        // 2 c0 + c0 - 3 c1 <= 4: terms of one column are merged.
        lp.le(Lin::term(c[0], 2.0).with(c[0], 1.0).with(c[1], -3.0), 4.0);
        lp.ge(Lin::term(f, 1.0).with(on, 0.5).with_lin(&Lin::constant(1.0), 1.0), 0.0);
        let objective = Lin::term(c[0], 0.13).with(on, 7.0).with(count, 2.0).with_lin(&Lin::constant(-2.5), 1.0);
        let mut out = Vec::new();
        lp.write_lp(&objective, "a test\nof two lines", &mut out).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        let expected = "\\ a test
\\ of two lines
Minimize
 obj: + 0.13 battery.charge(0) + 7.0 chp_1.on(0) + 2.0 boilers.on(0) - 2.5
Subject To
 battery.storage(0): + 3.0 battery.charge(0) - 3.0 battery.charge(1) <= 4.0
 battery.storage(1): + 0.5 chp_1.on(0) + 1.0 free(0) >= -1.0
Bounds
 0.0 <= battery.charge(0) <= 5.0
 0.0 <= battery.charge(1) <= 5.0
 0.0 <= boilers.on(0) <= 3.0
 -inf <= free(0) <= +inf
General
 boilers.on(0)
Binaries
 chp_1.on(0)
End
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_written_mps_model_is_the_same_problem_column_by_column() {
        let mut lp = Lp::new(Integrality::Integer);
        lp.scope("battery.charge");
        let c = lp.cols(2, 0.0, 5.0);
        lp.scope("chp-1.on");
        let on = lp.binary();
        lp.scope("boilers.on");
        let count = lp.integer(3);
        lp.scope("free");
        let f = lp.col(f64::NEG_INFINITY, f64::INFINITY);
        lp.scope("battery.storage");
        lp.le(Lin::term(c[0], 2.0).with(c[0], 1.0).with(c[1], -3.0), 4.0);
        lp.ge(Lin::term(f, 1.0).with(on, 0.5).with(count, 1.0).with_lin(&Lin::constant(1.0), 1.0), 0.0);
        let objective = Lin::term(c[0], 0.13).with(on, 7.0).with(count, 2.0).with_lin(&Lin::constant(-2.5), 1.0);
        let mut out = Vec::new();
        lp.write_mps(&objective, "a test", &mut out).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        let expected = "* a test
NAME volta
ROWS
 N obj
 L battery.storage(0)
 G battery.storage(1)
COLUMNS
 battery.charge(0) obj 0.13
 battery.charge(0) battery.storage(0) 3.0
 battery.charge(1) battery.storage(0) -3.0
 MARKER0 'MARKER' 'INTORG'
 chp_1.on(0) obj 7.0
 chp_1.on(0) battery.storage(1) 0.5
 MARKER0 'MARKER' 'INTEND'
 MARKER1 'MARKER' 'INTORG'
 boilers.on(0) obj 2.0
 boilers.on(0) battery.storage(1) 1.0
 MARKER1 'MARKER' 'INTEND'
 free(0) battery.storage(1) 1.0
RHS
 RHS obj 2.5
 RHS battery.storage(0) 4.0
 RHS battery.storage(1) -1.0
BOUNDS
 LO BND battery.charge(0) 0.0
 UP BND battery.charge(0) 5.0
 LO BND battery.charge(1) 0.0
 UP BND battery.charge(1) 5.0
 BV BND chp_1.on(0)
 LO BND boilers.on(0) 0.0
 UP BND boilers.on(0) 3.0
 MI BND free(0)
 PL BND free(0)
ENDATA
";
        assert_eq!(text, expected);
    }
}
