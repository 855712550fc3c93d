//! Gradient-boosted regression trees on feature histograms.
//!
//! Each feature is cut into at most `max_bins` quantile bins once; trees
//! then grow depth-first on per-bin sums of gradients and hessians, with the
//! larger child's histogram obtained by subtracting the smaller child's from
//! its parent's. Missing values fall in their own bin, always sent left.
//!
//! Losses:
//! - squared error: gradient `pred - y`, hessian 1, Newton leaf values;
//! - quantile (pinball) at level α: the tree structure is grown on the
//!   pinball gradient, then each leaf takes the α-quantile of the residuals
//!   of its rows, as in the gradient-boosting literature (Friedman 2001).
//!
//! Rows are subsampled per tree by a seeded hash of the tree and the row's
//! key, so a fit is reproducible, and a row taken out of the training set
//! (a value the quality check flagged, say) changes no other row's draws:
//! a sequential generator would reshuffle every later row and move the
//! model by as much as the row itself matters little.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use volta_engine::Cancel;

use crate::quality::median;

/// The loss a model minimises.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Loss {
    /// Squared error: the conditional mean.
    Squared,
    /// Pinball loss: the conditional `alpha`-quantile.
    Quantile {
        /// Level in (0, 1).
        alpha: f64,
    },
}

/// Hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GbdtParams {
    /// Number of trees.
    pub trees: usize,
    /// Shrinkage of each tree.
    pub learning_rate: f64,
    /// Maximum depth of a tree.
    pub max_depth: usize,
    /// Minimum rows in a leaf.
    pub min_leaf: usize,
    /// L2 regularisation of leaf values.
    pub lambda: f64,
    /// Share of rows each tree sees.
    pub subsample: f64,
    /// Histogram bins per feature (2–255).
    pub max_bins: usize,
    /// Seed of the row subsampling.
    pub seed: u64,
    /// The loss.
    pub loss: Loss,
}

impl Default for GbdtParams {
    fn default() -> Self {
        Self {
            trees: 400,
            learning_rate: 0.05,
            max_depth: 6,
            min_leaf: 20,
            lambda: 1.0,
            subsample: 0.8,
            max_bins: 64,
            seed: 7,
            loss: Loss::Squared,
        }
    }
}

impl GbdtParams {
    /// Checks the parameters; the error names the offending one.
    ///
    /// # Errors
    /// Any parameter outside its range.
    pub fn check(&self) -> Result<(), String> {
        if self.trees == 0 {
            return Err("trees must be at least 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(format!("learning_rate must be in (0, 1], not {}", self.learning_rate));
        }
        if self.max_depth == 0 || self.max_depth > 16 {
            return Err(format!("max_depth must be in 1..=16, not {}", self.max_depth));
        }
        if self.min_leaf == 0 {
            return Err("min_leaf must be at least 1".into());
        }
        if !(self.subsample > 0.0 && self.subsample <= 1.0) {
            return Err(format!("subsample must be in (0, 1], not {}", self.subsample));
        }
        if !(2..=255).contains(&self.max_bins) {
            return Err(format!("max_bins must be in 2..=255, not {}", self.max_bins));
        }
        if self.lambda < 0.0 {
            return Err(format!("lambda must be non-negative, not {}", self.lambda));
        }
        if let Loss::Quantile { alpha } = self.loss
            && !(alpha > 0.0 && alpha < 1.0)
        {
            return Err(format!("quantile alpha must be in (0, 1), not {alpha}"));
        }
        Ok(())
    }
}

/// A node of a fitted tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Node {
    /// `x[feature] <= threshold` (or missing) goes to `left`, else `right`.
    Split {
        feature: u32,
        threshold: f64,
        left: u32,
        right: u32,
    },
    Leaf {
        value: f64,
    },
}

/// A fitted ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbdt {
    /// The loss it was fitted with.
    pub loss: Loss,
    base: f64,
    trees: Vec<Vec<Node>>,
    /// Total split gain per feature (importance).
    pub importance: Vec<f64>,
}

impl Gbdt {
    /// Predicts one row.
    #[must_use]
    pub fn predict_row(&self, x: &[f64]) -> f64 {
        let mut out = self.base;
        for tree in &self.trees {
            let mut at = 0usize;
            loop {
                match &tree[at] {
                    Node::Leaf { value } => {
                        out += value;
                        break;
                    }
                    Node::Split { feature, threshold, left, right } => {
                        let v = x[*feature as usize];
                        at = if v.is_nan() || v <= *threshold { *left as usize } else { *right as usize };
                    }
                }
            }
        }
        out
    }

    /// Number of trees.
    #[must_use]
    pub fn len(&self) -> usize {
        self.trees.len()
    }

    /// Whether there are no trees.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }

    /// Fits an ensemble to row-major `x` (`width` columns) and targets `y`.
    ///
    /// # Errors
    /// Invalid parameters, or no rows.
    pub fn fit(x: &[f64], width: usize, y: &[f64], params: &GbdtParams) -> Result<Self, String> {
        Self::fit_cancellable(x, width, y, params, &Cancel::new())
    }

    /// [`fit`](Self::fit), checking `cancel` before each tree.
    ///
    /// # Errors
    /// As [`fit`](Self::fit), and `"cancelled"` once `cancel` is cancelled.
    pub fn fit_cancellable(
        x: &[f64],
        width: usize,
        y: &[f64],
        params: &GbdtParams,
        cancel: &Cancel,
    ) -> Result<Self, String> {
        let keys: Vec<u64> = (0..y.len() as u64).collect();
        Self::fit_keyed(x, width, y, &keys, params, cancel)
    }

    /// [`fit_cancellable`](Self::fit_cancellable) with a key per row that
    /// names it independently of its position (a forecaster's (issue,
    /// lead)): the row's subsampling draws depend on its key alone.
    ///
    /// # Errors
    /// As [`fit_cancellable`](Self::fit_cancellable), and keys that do not
    /// match the rows.
    pub fn fit_keyed(
        x: &[f64],
        width: usize,
        y: &[f64],
        keys: &[u64],
        params: &GbdtParams,
        cancel: &Cancel,
    ) -> Result<Self, String> {
        params.check()?;
        let n = y.len();
        if n == 0 || width == 0 || x.len() != n * width {
            return Err(format!("{n} rows of {width} features do not match {} values", x.len()));
        }
        if keys.len() != n {
            return Err(format!("{} row keys for {n} rows", keys.len()));
        }
        let binned = Binned::new(x, width, n, params.max_bins);
        let base = match params.loss {
            Loss::Squared => y.iter().sum::<f64>() / n as f64,
            Loss::Quantile { alpha } => quantile(&mut y.to_vec(), alpha),
        };
        let mut pred = vec![base; n];
        let mut grad = vec![0.0; n];
        let mut trees = Vec::with_capacity(params.trees);
        let mut importance = vec![0.0; width];
        let mut rows: Vec<u32> = Vec::with_capacity(n);
        for tree in 0..params.trees as u64 {
            if cancel.is_cancelled() {
                return Err("cancelled".to_owned());
            }
            for i in 0..n {
                grad[i] = match params.loss {
                    Loss::Squared => pred[i] - y[i],
                    Loss::Quantile { alpha } => {
                        if y[i] < pred[i] {
                            1.0 - alpha
                        } else {
                            -alpha
                        }
                    }
                };
            }
            rows.clear();
            if params.subsample < 1.0 {
                let cut = (params.subsample * u32::MAX as f64) as u64;
                let salt = mix(params.seed ^ tree.wrapping_mul(0xD6E8_FEB8_6659_FD93));
                rows.extend((0..n as u32).filter(|&i| mix(salt ^ keys[i as usize]) & 0xFFFF_FFFF <= cut));
            } else {
                rows.extend(0..n as u32);
            }
            if rows.len() < 2 * params.min_leaf {
                rows.clear();
                rows.extend(0..n as u32);
            }
            let mut grower =
                Grower { binned: &binned, grad: &grad, params, nodes: Vec::new(), importance: &mut importance };
            let mut leaves = Vec::new();
            grower.grow(&mut rows, None, 0, &mut leaves);
            let mut nodes = grower.nodes;
            // Leaf values: Newton steps for squared error, residual quantiles
            // for the pinball loss; then shrink and apply to every row: the
            // sampled rows through their leaf, the others through the tree.
            let mut placed = vec![false; n];
            for (node, members) in leaves {
                let value = match params.loss {
                    Loss::Squared => {
                        let g: f64 = members.iter().map(|&r| grad[r as usize]).sum();
                        -g / (members.len() as f64 + params.lambda)
                    }
                    Loss::Quantile { alpha } => {
                        let mut res: Vec<f64> = members.iter().map(|&r| y[r as usize] - pred[r as usize]).collect();
                        quantile(&mut res, alpha)
                    }
                };
                let value = value * params.learning_rate;
                nodes[node] = Node::Leaf { value };
                for &r in &members {
                    pred[r as usize] += value;
                    placed[r as usize] = true;
                }
            }
            let tree = Gbdt { loss: params.loss, base: 0.0, trees: vec![nodes], importance: Vec::new() };
            pred.par_iter_mut().zip(&placed).enumerate().with_min_len(4096).for_each(|(i, (p, &done))| {
                if !done {
                    *p += tree.predict_row(&x[i * width..(i + 1) * width]);
                }
            });
            trees.push(tree.trees.into_iter().next().unwrap_or_default());
        }
        Ok(Self { loss: params.loss, base, trees, importance })
    }
}

/// Features cut into bins; bin 0 holds missing values.
struct Binned {
    /// Column-major bin indices.
    bins: Vec<Vec<u8>>,
    /// Upper edge (inclusive) of each bin ≥ 1, per feature.
    edges: Vec<Vec<f64>>,
}

impl Binned {
    fn new(x: &[f64], width: usize, n: usize, max_bins: usize) -> Self {
        let (bins, edges) = (0..width)
            .into_par_iter()
            .map(|f| {
                let mut vals: Vec<f64> = (0..n).map(|i| x[i * width + f]).filter(|v| !v.is_nan()).collect();
                vals.sort_by(f64::total_cmp);
                vals.dedup();
                let usable = max_bins - 1;
                let edges: Vec<f64> = if vals.len() <= usable {
                    vals
                } else {
                    let mut e: Vec<f64> =
                        (1..=usable).map(|b| vals[(b * vals.len() / usable).min(vals.len()) - 1]).collect();
                    e.dedup();
                    e
                };
                let col: Vec<u8> = (0..n)
                    .map(|i| {
                        let v = x[i * width + f];
                        if v.is_nan() {
                            0
                        } else {
                            (edges.partition_point(|&e| e < v).min(edges.len().saturating_sub(1)) + 1) as u8
                        }
                    })
                    .collect();
                (col, edges)
            })
            .unzip();
        Self { bins, edges }
    }
}

/// Per-bin gradient sums and counts of one feature, over all 256 possible
/// bins so that a `u8` bin indexes them without a bounds check.
#[derive(Clone)]
struct Hist {
    g: Box<[f64; 256]>,
    n: Box<[u32; 256]>,
}

impl Hist {
    fn empty() -> Self {
        Self { g: Box::new([0.0; 256]), n: Box::new([0; 256]) }
    }
}

struct Grower<'a> {
    binned: &'a Binned,
    grad: &'a [f64],
    params: &'a GbdtParams,
    nodes: Vec<Node>,
    importance: &'a mut [f64],
}

impl Grower<'_> {
    fn histograms(&self, rows: &[u32]) -> Vec<Hist> {
        // Gather the rows' gradients once, for every feature.
        let grads: Vec<f64> = rows.iter().map(|&r| self.grad[r as usize]).collect();
        self.binned
            .bins
            .par_iter()
            .with_min_len(if rows.len() > 4096 { 1 } else { usize::MAX })
            .map(|col| {
                let mut h = Hist::empty();
                for (&r, &g) in rows.iter().zip(&grads) {
                    let b = usize::from(col[r as usize]);
                    h.g[b] += g;
                    h.n[b] += 1;
                }
                h
            })
            .collect()
    }

    /// Grows the subtree of `rows` (reordered in place); returns its node
    /// index. Leaves are recorded with their rows for the value pass.
    fn grow(
        &mut self,
        rows: &mut [u32],
        hist: Option<Vec<Hist>>,
        depth: usize,
        leaves: &mut Vec<(usize, Vec<u32>)>,
    ) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node::Leaf { value: 0.0 });
        let min_leaf = self.params.min_leaf;
        if depth >= self.params.max_depth || rows.len() < 2 * min_leaf {
            leaves.push((id, rows.to_vec()));
            return id;
        }
        let hist = hist.unwrap_or_else(|| self.histograms(rows));
        let total_g: f64 = rows.iter().map(|&r| self.grad[r as usize]).sum();
        let total_n = rows.len() as f64;
        let lambda = self.params.lambda;
        let parent = total_g * total_g / (total_n + lambda);
        let mut best: Option<(f64, usize, usize)> = None; // gain, feature, last bin going left
        for (f, h) in hist.iter().enumerate() {
            let nbins = self.binned.edges[f].len() + 1;
            let (mut gl, mut nl) = (0.0, 0u32);
            for b in 0..nbins.saturating_sub(1) {
                gl += h.g[b];
                nl += h.n[b];
                let nr = rows.len() as u32 - nl;
                if (nl as usize) < min_leaf {
                    continue;
                }
                if (nr as usize) < min_leaf {
                    break;
                }
                let gr = total_g - gl;
                let gain = gl * gl / (f64::from(nl) + lambda) + gr * gr / (f64::from(nr) + lambda) - parent;
                if gain > 1e-12 && best.is_none_or(|(g, _, _)| gain > g) {
                    best = Some((gain, f, b));
                }
            }
        }
        let Some((gain, feature, last_left)) = best else {
            leaves.push((id, rows.to_vec()));
            return id;
        };
        self.importance[feature] += gain;
        let col = &self.binned.bins[feature];
        let mut split = 0;
        for i in 0..rows.len() {
            if (col[rows[i] as usize] as usize) <= last_left {
                rows.swap(i, split);
                split += 1;
            }
        }
        let (left_rows, right_rows) = rows.split_at_mut(split);
        // Histogram of the smaller child, the larger by subtraction; none if
        // neither child can split (the last level, or too few rows).
        let small_is_left = left_rows.len() <= right_rows.len();
        let splittable = depth + 1 < self.params.max_depth && left_rows.len().max(right_rows.len()) >= 2 * min_leaf;
        let (lh, rh) = if splittable {
            let small = self.histograms(if small_is_left { left_rows } else { right_rows });
            let large: Vec<Hist> = hist
                .into_iter()
                .zip(&small)
                .map(|(mut p, s)| {
                    p.g.iter_mut().zip(s.g.iter()).for_each(|(a, b)| *a -= b);
                    p.n.iter_mut().zip(s.n.iter()).for_each(|(a, b)| *a -= b);
                    p
                })
                .collect();
            if small_is_left { (Some(small), Some(large)) } else { (Some(large), Some(small)) }
        } else {
            (None, None)
        };
        let left = self.grow(left_rows, lh, depth + 1, leaves);
        let right = self.grow(right_rows, rh, depth + 1, leaves);
        // Bin b ≥ 1 holds values up to edges[b - 1]; bin 0 (missing) goes left.
        let threshold = if last_left == 0 { f64::NEG_INFINITY } else { self.binned.edges[feature][last_left - 1] };
        self.nodes[id] = Node::Split { feature: feature as u32, threshold, left: left as u32, right: right as u32 };
        id
    }
}

/// The `alpha`-quantile of `values` (linear interpolation; reorders them).
pub(crate) fn quantile(values: &mut [f64], alpha: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    if (alpha - 0.5).abs() < 1e-12 {
        return median(values);
    }
    values.sort_by(f64::total_cmp);
    let pos = alpha * (values.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
}

/// SplitMix64's finaliser: a well-mixed 64-bit hash of `x`, for the row
/// subsampling draws.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small seeded generator (SplitMix64), for the tests' data.
#[cfg(test)]
struct SplitMix(u64);

#[cfg(test)]
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0.wrapping_sub(0x9E37_79B9_7F4A_7C15))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> (Vec<f64>, Vec<f64>) {
        let mut rng = SplitMix(3);
        let mut x = Vec::with_capacity(2 * n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let a = (rng.next() % 1000) as f64 / 100.0;
            let b = (rng.next() % 1000) as f64 / 100.0;
            let noise = ((rng.next() % 1000) as f64 / 1000.0 - 0.5) * 2.0;
            x.extend([a, b]);
            y.push(if a > 5.0 { 10.0 } else { 0.0 } + b + noise);
        }
        (x, y)
    }

    #[test]
    fn squared_loss_learns_a_step_and_a_slope() {
        let (x, y) = data(4000);
        let model = Gbdt::fit(&x, 2, &y, &GbdtParams { trees: 200, ..GbdtParams::default() }).expect("fit");
        let mae: f64 = (0..4000).map(|i| (model.predict_row(&x[2 * i..2 * i + 2]) - y[i]).abs()).sum::<f64>() / 4000.0;
        // The noise is uniform on [-1, 1]: its MAE is 0.5.
        assert!(mae < 0.6, "mae {mae}");
        assert!((model.predict_row(&[8.0, 3.0]) - 13.0).abs() < 0.5);
        assert!((model.predict_row(&[2.0, 3.0]) - 3.0).abs() < 0.5);
        assert!(model.importance[0] > 0.0 && model.importance[1] > 0.0);
        // Missing values go left without panicking.
        assert!(model.predict_row(&[f64::NAN, 3.0]).is_finite());
    }

    #[test]
    fn quantile_loss_covers_its_level() {
        let (x, y) = data(4000);
        for alpha in [0.1, 0.9] {
            let params = GbdtParams { trees: 150, loss: Loss::Quantile { alpha }, ..GbdtParams::default() };
            let model = Gbdt::fit(&x, 2, &y, &params).expect("fit");
            let below = (0..4000).filter(|&i| y[i] <= model.predict_row(&x[2 * i..2 * i + 2])).count() as f64 / 4000.0;
            assert!((below - alpha).abs() < 0.05, "alpha {alpha}: {below}");
        }
    }

    #[test]
    fn fits_are_reproducible_and_bad_parameters_named() {
        let (x, y) = data(500);
        let p = GbdtParams { trees: 20, ..GbdtParams::default() };
        assert_eq!(Gbdt::fit(&x, 2, &y, &p), Gbdt::fit(&x, 2, &y, &p));
        let bad = GbdtParams { learning_rate: 0.0, ..GbdtParams::default() };
        assert!(Gbdt::fit(&x, 2, &y, &bad).expect_err("bad").contains("learning_rate"));
        assert!(Gbdt::fit(&x, 2, &y[..10], &p).is_err());
    }
}
