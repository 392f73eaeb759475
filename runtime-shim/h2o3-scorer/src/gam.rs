//! Generalized Additive Models (`GamMojoModel`, `GamMojoMultinomialModel`).
//!
//! A GAM MOJO is a GLM over `[columns]` = the plain predictors, then the "expanded"
//! (centred spline) columns of each GAM column: `age_0_center_cs__0`, ...,
//! `age_score_1_center_tp_4`. A client sends the original predictors (`age`, `score`);
//! genmodel's `EasyPredictModelWrapper` computes the spline columns from them
//! (`GamRowToRawDataConverter` → `addExpandGamCols`) before the GLM scores the row, and so
//! does this module. Every spline type h2o 3.46 writes is expanded:
//!
//! - `bs = 0`, cubic regression spline: the natural cubic basis of the value between its
//!   two knots (`GamUtilsCubicRegression`, with `_binvD`), then centred by `zTranspose`;
//! - `bs = 1`, thin plate regression spline over one or more predictors: the radial
//!   distances to the knots projected by `zTransposeCS`, the polynomial terms
//!   (`polynomialBasisList`), then centred by `zTranspose` (`GamUtilsThinPlateRegression`);
//! - `bs = 2`, monotone I-spline: sums of normalized B-splines of order + 1 (`ISplines`,
//!   `NBSplinesTypeII`), not centred;
//! - `bs = 3`, M-spline (`MSplines`, `NBSplinesTypeI`), centred.
//!
//! Genmodel 3.46 has three slips this module reproduces, since its output is the
//! reference: (1) it advances its write position by `num_knots - 1` after every GAM
//! column, although an I-spline writes `num_knots + order - 2` values and an M-spline
//! `num_knots + order - 3`, so the columns after those land shifted (the last ones stay
//! missing and are mean-imputed); (2) an M-spline is centred with the `zTranspose` of the
//! GAM column whose index is the M-spline's own counter (the first GAM columns), not its
//! own; (3) the thin plate polynomial exponents are read with the predictor count of the
//! column after the cubic splines (`_d[num_CS_col + i]`). Where those slips make genmodel
//! throw on every row (a centring matrix too small, too few exponents, a thin plate
//! model with `standardize`, whose column means genmodel reads as empty), the model is
//! refused at load with the reason, as is a GAM with an offset column (genmodel's GAM
//! scorer throws on any non-zero offset).
//!
//! A missing predictor leaves its spline columns missing; mean imputation
//! (`numNAFillsCenter`) then fills them, as in genmodel. A predictor cell spelled `NaN` is
//! taken as missing too: genmodel expands `Double.parseDouble("NaN")`, which gives the same
//! missing columns for every spline type but an order-1 M-spline.
//!
//! The row this module scores is `[features][GAM predictors not among them][workspace]`
//! ([`Built::n_features`] covers all three), so scoring allocates nothing beyond the row.

use serde_json::{json, Map, Value};

use artifact_core::ColumnType;

use crate::blob::{lines, Numbers};
use crate::glm::{check_cat_offsets, link_prediction, softmax_label, GlmLink};
use crate::input::{InputColumn, Kind, Levels, Slot};
use crate::keys::{unsupported, Keys, LoadResult};
use crate::model::{Common, Model};
use crate::{classes, Built, Render};

const CS: i64 = 0;
const TP: i64 = 1;
const IS: i64 = 2;
const MS: i64 = 3;

fn spline_name(bs: i64) -> &'static str {
    match bs {
        CS => "cubic regression spline",
        TP => "thin plate regression spline",
        IS => "monotone I-spline",
        _ => "M-spline",
    }
}

/// `1 / t`, or 0 where `t` is 0 (`formDenominator*`).
fn inv(t: f64) -> f64 {
    if t == 0.0 {
        0.0
    } else {
        1.0 / t
    }
}

/// `GamUtilsISplines.fillKnots`: the knots with the first repeated `m - 1` times before
/// and the last after.
fn fill_knots(knots: &[f64], m: usize) -> Vec<f64> {
    let lead = m.saturating_sub(1);
    let mut out = Vec::with_capacity(knots.len() + 2 * lead);
    out.extend(std::iter::repeat_n(knots[0], lead));
    out.extend_from_slice(knots);
    out.extend(std::iter::repeat_n(knots[knots.len() - 1], lead));
    out
}

/// `GamUtilsISplines.extractKnots`: the `order + 1` knots from `index`, zero past the end.
fn extract_knots(index: usize, order: usize, knots: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; order + 1];
    for (o, k) in out.iter_mut().zip(knots.iter().skip(index)) {
        *o = *k;
    }
    out
}

/// One node `(index, order)` of genmodel's recursive spline basis (`BSplineBasis`,
/// `MSplineBasis`): where it is non-zero and its recursion constants.
#[derive(Debug, Clone, Copy)]
struct Node {
    lo: f64,
    hi: f64,
    n0: f64,
    n1: f64,
    d0: f64,
    d1: f64,
    /// The value of an order-1 node inside its range.
    leaf: f64,
}

/// The basis functions of one order over a knot sequence with duplicates, with every
/// lower-order node their recursion reaches: normalized B-splines (`NBSplinesTypeII`) or
/// M-splines (`NBSplinesTypeI`).
#[derive(Debug)]
struct Basis {
    order: usize,
    m_spline: bool,
    /// `nodes[o - 1][i]`: node `(i, o)`.
    nodes: Vec<Vec<Node>>,
    /// Where the nodes of `order` start in a [`Basis::fill`] table.
    top: usize,
}

impl Basis {
    fn new(knots: &[f64], order: usize, roots: usize, m_spline: bool) -> Basis {
        let nodes = (1..=order)
            .map(|o| {
                (0..roots + order - o)
                    .map(|i| {
                        let ext = extract_knots(i, o, knots);
                        let (n0, n1, d0, d1) = if o == 1 {
                            (1.0, 0.0, 1.0, 0.0)
                        } else if m_spline {
                            let d = inv(ext[o] - ext[0]);
                            (ext[0], ext[o], d, d)
                        } else {
                            (
                                ext[0],
                                ext[o],
                                inv(ext[o - 1] - ext[0]),
                                inv(ext[o] - ext[1]),
                            )
                        };
                        let leaf = if m_spline { inv(ext[1] - ext[0]) } else { 1.0 };
                        Node {
                            lo: ext[0],
                            hi: ext[o],
                            n0,
                            n1,
                            d0,
                            d1,
                            leaf,
                        }
                    })
                    .collect()
            })
            .collect::<Vec<Vec<Node>>>();
        let top = nodes[..order - 1].iter().map(Vec::len).sum();
        Basis {
            order,
            m_spline,
            nodes,
            top,
        }
    }

    fn node(&self, index: usize, order: usize) -> &Node {
        &self.nodes[order - 1][index]
    }

    /// The values of every node at `v`: [`Basis::table_len`] of them, order 1 first.
    fn table_len(&self) -> usize {
        self.nodes.iter().map(Vec::len).sum()
    }

    /// Fills `table` with `BSplineBasis.evaluate` / `MSplineBasis.evaluate` of every node
    /// at `v`, lower orders first. genmodel evaluates a node recursively, its two
    /// children first, so the basis functions of a row share most of their nodes; each
    /// node is computed here once, by the same expression on the same values (so the
    /// same bits), and read with [`Basis::value`].
    fn fill(&self, v: f64, table: &mut [f64]) {
        let mut at = 0;
        for (o, nodes) in self.nodes.iter().enumerate() {
            let order = o + 1;
            let (lower, this) = table.split_at_mut(at);
            let children = &lower[at - if o == 0 { 0 } else { self.nodes[o - 1].len() }..];
            for (i, (n, t)) in nodes.iter().zip(this.iter_mut()).enumerate() {
                *t = if v < n.lo || v >= n.hi {
                    0.0
                } else if order == 1 {
                    n.leaf
                } else {
                    let sum = (v - n.n0) * n.d0 * children[i] + (n.n1 - v) * n.d1 * children[i + 1];
                    if self.m_spline {
                        let o = order as f64;
                        o / (o - 1.0) * sum
                    } else {
                        sum
                    }
                };
            }
            at += nodes.len();
        }
    }

    /// Node `(index, self.order)` of a table [`Basis::fill`] filled.
    fn value(&self, table: &[f64], index: usize) -> f64 {
        table[self.top + index]
    }
}

/// `ISplines`: `n` monotone basis functions, each 0 below its knots, 1 above, and a sum of
/// B-splines of order + 1 between.
#[derive(Debug)]
struct ISpline {
    /// Range of each I-spline basis function (`ISplineBasis._knots[0]`, `[order]`).
    ranges: Vec<(f64, f64)>,
    bsplines: Basis,
    n_bsplines: usize,
}

impl ISpline {
    fn new(order: usize, knots: &[f64]) -> ISpline {
        let dup = fill_knots(knots, order);
        let n = knots.len() + order - 2;
        let ranges = (0..n)
            .map(|b| {
                let ext = extract_knots(b, order, &dup);
                (ext[0], ext[order])
            })
            .collect();
        let n_bsplines = knots.len() + order - 1;
        ISpline {
            ranges,
            bsplines: Basis::new(&fill_knots(knots, order + 1), order + 1, n_bsplines, false),
            n_bsplines,
        }
    }

    /// `table`: [`Basis::table_len`] of the B-splines, as workspace.
    fn gamify(&self, out: &mut [f64], v: f64, table: &mut [f64]) {
        let order = self.bsplines.order;
        self.bsplines.fill(v, table);
        for (b, (o, &(lo, hi))) in out.iter_mut().zip(&self.ranges).enumerate() {
            *o = if v < lo {
                0.0
            } else if v >= hi {
                1.0
            } else {
                let mut sum = 0.0;
                for s in b + 1..self.n_bsplines {
                    let n = self.bsplines.node(s, order);
                    if v < n.lo {
                        break;
                    } else if v >= n.hi {
                        sum += 1.0;
                    } else {
                        sum += self.bsplines.value(table, s);
                    }
                }
                sum
            };
        }
    }
}

/// `MSplines`: `n` M-spline basis functions of one order.
#[derive(Debug)]
struct MSpline {
    basis: Basis,
    n: usize,
}

impl MSpline {
    fn new(order: usize, knots: &[f64]) -> MSpline {
        let n = knots.len() + order - 2;
        MSpline {
            basis: Basis::new(&fill_knots(knots, order), order, n, true),
            n,
        }
    }

    /// `table`: [`Basis::table_len`], as workspace.
    fn gamify(&self, out: &mut [f64], v: f64, table: &mut [f64]) {
        self.basis.fill(v, table);
        for (b, o) in out[..self.n].iter_mut().enumerate() {
            *o = self.basis.value(table, b);
        }
    }
}

/// `ArrayUtils.multArray`: `out[i] = Σ_j a[j] · bt[i][j]`, summed in `j` order from 0.
fn mult(a: &[f64], bt: &[Vec<f64>], out: &mut [f64]) {
    for (o, row) in out.iter_mut().zip(bt) {
        let mut s = 0.0;
        for (x, b) in a.iter().zip(row) {
            s += x * b;
        }
        *o = s;
    }
}

/// `GamUtilsThinPlateRegression.intPow`: repeated multiplication (`base` for a negative
/// exponent, as the Java falls through to its loop).
fn int_pow(base: f64, exp: i32) -> f64 {
    match exp {
        0 => 1.0,
        1 => base,
        2 => base * base,
        _ => {
            let mut r = base;
            for _ in 1..exp {
                r *= base;
            }
            r
        }
    }
}

/// `GamUtilsThinPlateRegression.factorial` (Java `int` arithmetic).
fn factorial(m: i32) -> i32 {
    (1..=m.max(1)).fold(1i32, |p, i| p.wrapping_mul(i))
}

/// `calTPConstantTerm`.
fn tp_constant(m: i32, d: i32, even: bool) -> f64 {
    let pi = std::f64::consts::PI;
    if even {
        (-1f64).powf(f64::from(m) + 1.0 + f64::from(d) / 2.0)
            / (2f64.powf(f64::from(2 * m - 1))
                * pi.powf(f64::from(d) / 2.0)
                * f64::from(factorial(m - 1))
                * f64::from(factorial(m - d / 2)))
    } else {
        (-1f64).powf(f64::from(m)) * f64::from(m)
            / (f64::from(factorial(2 * m)) * pi.powf(f64::from(d - 1) / 2.0))
    }
}

#[derive(Debug)]
enum Spline {
    Cubic {
        knots: Vec<f64>,
        hj: Vec<f64>,
        binv_d: Vec<Vec<f64>>,
        zt: Vec<Vec<f64>>,
    },
    I(ISpline),
    M {
        basis: MSpline,
        /// The centring matrix genmodel uses (see the module docs).
        zt: Vec<Vec<f64>>,
    },
    ThinPlate {
        /// `[predictor][knot]`.
        knots: Vec<Vec<f64>>,
        m: i32,
        even: bool,
        constant: f64,
        /// `zTransposeCS`, rows cut to the `num_knots - M` genmodel computes.
        zt_cs: Vec<Vec<f64>>,
        /// Polynomial exponents, `[M][d]` as genmodel reads them.
        poly: Vec<Vec<i32>>,
        zt: Vec<Vec<f64>>,
    },
}

/// One GAM column of `gam_columns_sorted`.
#[derive(Debug)]
struct GamColumn {
    spline: Spline,
    /// Row index of each predictor's value.
    sources: Vec<usize>,
    /// Where genmodel writes its values, and how many.
    start: usize,
    width: usize,
}

impl GamColumn {
    /// The workspace expanding it needs: the predictor values, then the basis.
    fn scratch(&self) -> usize {
        self.sources.len()
            + match &self.spline {
                Spline::Cubic { knots, .. } => knots.len(),
                Spline::I(s) => s.bsplines.table_len(),
                Spline::M { basis, .. } => basis.n + basis.basis.table_len(),
                Spline::ThinPlate { knots, .. } => 2 * knots[0].len(),
            }
    }

    /// Writes the spline columns of the row (`addCSGamification`, ...); a missing
    /// predictor leaves them missing.
    fn expand(&self, head: &mut [f64], scratch: &mut [f64]) {
        let d = self.sources.len();
        for (p, &s) in scratch.iter_mut().zip(&self.sources) {
            if head[s].is_nan() {
                return;
            }
            *p = head[s];
        }
        let (pred, work) = scratch.split_at_mut(d);
        let out = &mut head[self.start..self.start + self.width];
        match &self.spline {
            Spline::Cubic {
                knots,
                hj,
                binv_d,
                zt,
            } => {
                let basis = &mut work[..knots.len()];
                cubic_basis(pred[0], knots, hj, binv_d, basis);
                mult(basis, zt, out);
            }
            Spline::I(s) => s.gamify(out, pred[0], work),
            Spline::M { basis: spline, zt } => {
                let (basis, table) = work.split_at_mut(spline.n);
                spline.gamify(basis, pred[0], table);
                mult(basis, zt, out);
            }
            Spline::ThinPlate {
                knots,
                m,
                even,
                constant,
                zt_cs,
                poly,
                zt,
            } => {
                let k = knots[0].len();
                let (dist, rest) = work.split_at_mut(k);
                let row = &mut rest[..k];
                let power = 2 * m - d as i32;
                for (j, dj) in dist.iter_mut().enumerate() {
                    let mut sum_sq = 0.0;
                    for (x, kp) in pred.iter().zip(knots) {
                        let t = x - kp[j];
                        sum_sq += t * t;
                    }
                    let distance = int_pow(sum_sq.sqrt(), power);
                    *dj = constant * distance;
                    if *even && distance != 0.0 {
                        *dj *= distance.ln();
                    }
                }
                let n_dist = k - poly.len();
                mult(dist, zt_cs, &mut row[..n_dist]);
                for (r, exps) in row[n_dist..].iter_mut().zip(poly) {
                    let mut v = 1.0;
                    for (x, &e) in pred.iter().zip(exps) {
                        v *= int_pow(*x, e);
                    }
                    *r = v;
                }
                mult(row, zt, out);
            }
        }
    }
}

/// `GamUtilsCubicRegression.expandOneGamCol` of a value that is not NaN.
fn cubic_basis(x: f64, knots: &[f64], hj: &[f64], binv_d: &[Vec<f64>], basis: &mut [f64]) {
    let bin = locate_bin(x, knots);
    let jp1 = bin + 1;
    let h = hj[bin];
    let t = knots[jp1] - x;
    let cmj = (t * t * t / h - t * h) / 6.0;
    let t = x - knots[bin];
    let cpj = (t * t * t / h - t * h) / 6.0;
    let mat = binv_d.len();
    for (i, b) in basis.iter_mut().enumerate() {
        *b = if bin == 0 {
            binv_d[bin][i] * cpj
        } else if bin >= mat {
            binv_d[bin - 1][i] * cmj
        } else {
            binv_d[bin - 1][i] * cmj + binv_d[bin][i] * cpj
        };
    }
    basis[bin] += (knots[jp1] - x) / h;
    basis[jp1] += (x - knots[bin]) / h;
}

/// `GamUtilsCubicRegression.locateBin`: the knot interval of `x` (binary search).
fn locate_bin(x: f64, knots: &[f64]) -> usize {
    if x <= knots[0] {
        return 0;
    }
    let mut high = knots.len() - 1;
    if x >= knots[high] {
        return high - 1;
    }
    let mut low = 0;
    let mut bin = 0;
    for _ in 0..knots.len() {
        bin = (high + low) / 2;
        if x >= knots[bin] && x < knots[bin + 1] {
            return bin;
        } else if x > knots[bin] {
            low = bin;
        } else if x < knots[bin] {
            high = bin;
        }
    }
    bin
}

/// How the linear predictors become predictions.
#[derive(Debug)]
enum Family {
    /// `GamMojoModel`: one linear predictor through the link; a binomial-type family
    /// (`bernoulli`, `quasibinomial`, `fractionalbinomial`) gives two class probabilities.
    Link {
        link: GlmLink,
        classifier: bool,
        beta: Beta,
    },
    /// `GamMojoMultinomialModel` with family `multinomial`: softmax of one linear
    /// predictor per class.
    Multinomial(Vec<Beta>),
    /// `GamMojoMultinomialModel` with family `ordinal` (`postPredOrdinal`).
    Ordinal(Vec<Beta>),
}

/// One coefficient vector (`beta_center` or a class row of `beta_multinomial_centering`).
#[derive(Debug)]
struct Beta {
    beta: Vec<f64>,
    /// `noff = cat_offsets[cats] - cats`: the numeric column `i` has coefficient
    /// `noff + i`.
    noff: i64,
    /// End of genmodel's numeric loop (`beta.length - 1 - noff`).
    num_end: usize,
}

/// The GLM half of a GAM: it scores the expanded row (`gamScore0`).
#[derive(Debug)]
struct Glm {
    use_all_levels: bool,
    cats: usize,
    cat_offsets: Vec<i64>,
    mean_imputation: bool,
    cat_fills: Vec<f64>,
    num_fills: Vec<f64>,
    default_threshold: f64,
    family: Family,
}

impl Glm {
    /// `generateEta`: the linear predictor of the (expanded, imputed) row.
    fn eta(&self, b: &Beta, data: &[f64]) -> f64 {
        let mut eta = 0.0;
        for (i, &v) in data[..self.cats].iter().enumerate() {
            let level = if self.use_all_levels {
                v as i32
            } else {
                (v as i32).wrapping_sub(1)
            };
            if level < 0 {
                continue;
            }
            let at = i64::from(level) + self.cat_offsets[i];
            if at < self.cat_offsets[i + 1] && at >= 0 {
                eta += b.beta[at as usize];
            }
        }
        for (i, &v) in data.iter().enumerate().take(b.num_end).skip(self.cats) {
            eta += b.beta[(b.noff + i as i64) as usize] * v;
        }
        eta + b.beta[b.beta.len() - 1]
    }

    /// `imputeMissingWithMeans` then `gamScore0`.
    fn score(&self, data: &mut [f64], preds: &mut [f64]) {
        if self.mean_imputation {
            for (d, &f) in data[..self.cats].iter_mut().zip(&self.cat_fills) {
                if d.is_nan() {
                    *d = f;
                }
            }
            for (d, &f) in data[self.cats..].iter_mut().zip(&self.num_fills) {
                if d.is_nan() {
                    *d = f;
                }
            }
        }
        match &self.family {
            Family::Link {
                link,
                classifier,
                beta,
            } => link_prediction(
                preds,
                link.inv(self.eta(beta, data)),
                *classifier,
                self.default_threshold,
            ),
            Family::Multinomial(betas) => {
                for (c, b) in betas.iter().enumerate() {
                    preds[c + 1] = self.eta(b, data);
                }
                softmax_label(preds);
            }
            Family::Ordinal(betas) => {
                for (c, b) in betas.iter().enumerate() {
                    preds[c + 1] = self.eta(b, data);
                }
                ordinal_probabilities(preds, betas.len() - 1);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Gam {
    n_features: usize,
    /// Features plus the GAM predictors that are not features; the workspace follows.
    head: usize,
    columns: Vec<GamColumn>,
    glm: Glm,
}

impl Model for Gam {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        let (head, scratch) = row.split_at_mut(self.head);
        for c in &self.columns {
            c.expand(head, scratch);
        }
        self.glm.score(&mut head[..self.n_features], preds);
        true
    }
}

/// `postPredOrdinal`: cumulative logits to class probabilities; the label is the first
/// class whose logit is positive (the last class if none is).
fn ordinal_probabilities(preds: &mut [f64], last: usize) {
    let mut previous = 0.0;
    preds[0] = last as f64;
    let mut next = last + 1;
    for c in 0..last {
        let eta = preds[c + 1];
        let cdf = 1.0 / (1.0 + (-eta).exp());
        preds[c + 1] = cdf - previous;
        previous = cdf;
        if eta > 0.0 {
            preds[0] = c as f64;
            next = c + 1;
            break;
        }
    }
    for c in next..last {
        let cdf = 1.0 / (1.0 + (-preds[c + 1]).exp());
        preds[c + 1] = cdf - previous;
        previous = cdf;
    }
    preds[last + 1] = 1.0 - previous;
}

/// A required integer array of `model.ini`.
fn ints(keys: &Keys, key: &str) -> LoadResult<Vec<i64>> {
    match keys.opt_i64_array(key)? {
        Some(v) => Ok(v),
        None => keys.invalid(format!("key `{key}` is missing")),
    }
}

/// Entry `i` of an integer array as a size, for `what`.
fn size_at(keys: &Keys, v: &[i64], i: usize, what: &str) -> LoadResult<usize> {
    match v.get(i) {
        Some(&x) if x >= 0 => Ok(x as usize),
        Some(x) => keys.invalid(format!("{what}[{i}] = {x} is negative")),
        None => keys.invalid(format!(
            "{what} has {} entries, fewer than {}",
            v.len(),
            i + 1
        )),
    }
}

/// `read2DStringArrays`: the lines of `title` split into groups of `dims` lines.
fn groups(keys: &Keys, dims: &[i64], title: &str) -> LoadResult<Vec<Vec<String>>> {
    let lines = lines(keys, title)?;
    let total: i64 = dims.iter().sum();
    if dims.iter().any(|&d| d < 1) || total != lines.len() as i64 {
        return keys.invalid(format!(
            "{title} has {} lines, which do not split into groups of {dims:?}",
            lines.len()
        ));
    }
    let mut at = 0;
    Ok(dims
        .iter()
        .map(|&d| {
            let g = lines[at..at + d as usize]
                .iter()
                .map(|s| s.to_string())
                .collect();
            at += d as usize;
            g
        })
        .collect())
}

/// Spline orders above this are refused: genmodel's recursion costs `2^order` per
/// basis function and value.
const MAX_SPLINE_ORDER: usize = 16;

/// Loads a GAM MOJO with the columns a client sends and its scoring facts.
pub(crate) fn build(keys: &Keys) -> LoadResult<Built> {
    let mojo = keys.mojo;
    if !mojo.prefix.is_empty() {
        return unsupported(
            "a GAM inside another model (genmodel computes GAM columns only in its row converter)",
        );
    }
    if let Some(off) = keys
        .raw("offset_column")
        .filter(|v| *v != "null" && !v.is_empty())
    {
        return unsupported(format!(
            "a GAM with offset column {off:?} (genmodel's GAM scorer throws on any non-zero offset)"
        ));
    }
    let common = Common::read(keys)?;
    let nf = common.n_features;
    let glm = Glm::read(keys, &common)?;
    let expanded = keys.usize_or("num_expanded_gam_columns_center", 0)?;
    if expanded > nf {
        return keys.invalid(format!(
            "num_expanded_gam_columns_center = {expanded} but the model has {nf} features"
        ));
    }
    let plain = nf - expanded;
    let layout = Layout::read(keys)?;
    let inputs = inputs(keys, plain, &layout.user)?;
    let columns = layout.columns(keys, &inputs, plain, nf)?;
    let render = match &glm.family {
        Family::Link {
            classifier: false, ..
        } => Render::Values(1),
        _ => {
            let d = classes(mojo)?;
            if d.len() != common.n_classes {
                return keys.invalid(format!(
                    "n_classes = {} but the response has {} levels",
                    common.n_classes,
                    d.len()
                ));
            }
            Render::Classes(d)
        }
    };
    let preds_len = match &render {
        Render::Classes(d) => d.len() + 1,
        Render::Values(_) => 1,
    };
    let extra = inputs.len() - plain;
    let scratch = columns.iter().map(GamColumn::scratch).max().unwrap_or(0);
    let metadata = layout.metadata(keys, plain, &columns);
    Ok(Built {
        model: Box::new(Gam {
            n_features: nf,
            head: nf + extra,
            columns,
            glm,
        }),
        n_features: nf + extra + scratch,
        preds_len,
        render,
        text_domain: None,
        inputs: Some(inputs),
        outputs: None,
        metadata,
        contributions: Err(
            "genmodel computes contributions only for GBM, DRF and XGBoost models".to_string(),
        ),
    })
}

impl Glm {
    fn read(keys: &Keys, common: &Common) -> LoadResult<Glm> {
        let nf = common.n_features;
        let family_name = keys.req_str("family")?;
        let category = keys.mojo.category();
        let (want_category, classifier) = match family_name {
            "multinomial" => ("Multinomial", false),
            "ordinal" => ("Ordinal", false),
            "bernoulli" | "quasibinomial" | "fractionalbinomial" => ("Binomial", true),
            "AUTO" | "modified_huber" | "gaussian" | "poisson" | "gamma" | "tweedie" | "huber"
            | "laplace" | "quantile" | "negativebinomial" | "custom" => ("Regression", false),
            other => {
                return keys.invalid(format!(
                    "family {other:?} is not a genmodel distribution family"
                ))
            }
        };
        if category != want_category {
            return unsupported(format!(
                "GAM family {family_name:?} with category {category}"
            ));
        }
        let cats = keys.req_usize("cats")?;
        let cat_offsets = keys.opt_i64_array("cat_offsets")?.unwrap_or_default();
        check_cat_offsets(keys, &cat_offsets, cats)?;
        let nums_center = keys.req_usize("numsCenter")?;
        if cats + nums_center > nf {
            return keys.invalid(format!(
                "cats = {cats} + numsCenter = {nums_center} but the model has {nf} features"
            ));
        }
        let mean_imputation = keys.bool_or("mean_imputation", false)?;
        let cat_fills = keys.opt_i64_array("catNAFills")?.unwrap_or_default();
        let num_fills = keys.opt_f64_array("numNAFillsCenter")?.unwrap_or_default();
        if mean_imputation && (cat_fills.len() < cats || num_fills.len() < nums_center) {
            return keys.invalid(format!(
                "mean imputation needs {cats} catNAFills and {nums_center} numNAFillsCenter, found {} and {}",
                cat_fills.len(),
                num_fills.len()
            ));
        }
        let beta = |v: Vec<f64>, what: &str| -> LoadResult<Beta> {
            let noff = cat_offsets[cats] - cats as i64;
            let num_end = v.len() as i64 - 1 - noff;
            if v.is_empty() || cat_offsets[cats] >= v.len() as i64 || num_end > nf as i64 {
                return keys.invalid(format!(
                    "{what} has {} coefficients, which does not fit cat_offsets {cat_offsets:?} and {nf} features",
                    v.len()
                ));
            }
            Ok(Beta {
                beta: v,
                noff,
                num_end: num_end.max(0) as usize,
            })
        };
        let per_class = || -> LoadResult<Vec<Beta>> {
            let k = common.n_classes;
            if k < 2 {
                return keys.invalid(format!("n_classes = {k} for a {category} GAM"));
            }
            // Genmodel reads both; it scores with the centred one.
            let per = keys.usize_or("beta length per class", 0)?;
            Numbers::open(keys, "beta_multinomial")?.matrix(k, per)?;
            let per = keys.usize_or("beta center length per class", 0)?;
            let rows = Numbers::open(keys, "beta_multinomial_centering")?.matrix(k, per)?;
            rows.into_iter()
                .map(|r| beta(r, "beta_multinomial_centering"))
                .collect()
        };
        let family = match family_name {
            "multinomial" => Family::Multinomial(per_class()?),
            "ordinal" => Family::Ordinal(per_class()?),
            _ => Family::Link {
                link: link(keys, family_name)?,
                classifier,
                beta: beta(keys.req_f64_array("beta_center")?, "beta_center")?,
            },
        };
        Ok(Glm {
            use_all_levels: keys.bool_or("use_all_factor_levels", false)?,
            cats,
            cat_offsets,
            mean_imputation,
            cat_fills: cat_fills.iter().map(|&v| f64::from(v as i32)).collect(),
            num_fills,
            default_threshold: common.default_threshold,
            family,
        })
    }
}

/// `readLinkFunction` for the families `GamMojoModel` scores through `evalLink`.
fn link(keys: &Keys, family: &str) -> LoadResult<GlmLink> {
    Ok(match keys.raw("link") {
        None | Some("null") => match family {
            "bernoulli" | "fractionalbinomial" | "quasibinomial" | "modified_huber" => {
                GlmLink::Logit
            }
            "poisson" | "gamma" | "tweedie" => GlmLink::Log,
            _ => GlmLink::Identity,
        },
        Some(name) => GlmLink::read(keys, name)?,
    })
}

/// The columns a client sends: the plain features (before the spline columns), then the
/// GAM predictors that are not among them, each in its own slot after the features.
fn inputs(keys: &Keys, plain: usize, user: &[Vec<String>]) -> LoadResult<Vec<InputColumn>> {
    let mojo = keys.mojo;
    let nf = plain + keys.usize_or("num_expanded_gam_columns_center", 0)?;
    let mut inputs: Vec<InputColumn> = (0..plain)
        .map(|i| {
            let name = &mojo.ini.columns[i];
            let (ty, kind) = match &mojo.domains[i] {
                Some(d) => (ColumnType::String, Kind::Categorical(Levels::new(name, d))),
                None => (ColumnType::Float64, Kind::Numeric),
            };
            InputColumn {
                name: name.clone(),
                ty,
                kind,
                slot: Slot::Feature(i),
            }
        })
        .collect();
    for name in user.iter().flatten() {
        if let Some(c) = inputs.iter().find(|c| &c.name == name) {
            if matches!(c.kind, Kind::Categorical(_)) {
                return unsupported(format!("GAM column {name:?} that is categorical"));
            }
            continue;
        }
        let slot = Slot::Feature(nf + inputs.len() - plain);
        inputs.push(InputColumn {
            name: name.clone(),
            ty: ColumnType::Float64,
            kind: Kind::Numeric,
            slot,
        });
    }
    Ok(inputs)
}

/// The GAM columns as `model.ini` describes them, in genmodel's (sorted) order.
struct Layout {
    /// `gam_columns`, the user's order.
    user: Vec<Vec<String>>,
    /// `gam_columns_sorted`: cubic, I-, M-, then thin plate splines.
    sorted: Vec<Vec<String>>,
    bs: Vec<i64>,
    knots: Vec<i64>,
    preds: Vec<i64>,
    orders: Vec<i64>,
    n_cs: usize,
    n_tp: usize,
}

impl Layout {
    fn read(keys: &Keys) -> LoadResult<Layout> {
        let sorted = groups(
            keys,
            &ints(keys, "gam_column_dim_sorted")?,
            "gam_columns_sorted",
        )?;
        let user = groups(keys, &ints(keys, "gam_column_dim")?, "gam_columns")?;
        let bs = ints(keys, "bs_sorted")?;
        let count = |key: &str| keys.req_usize(key);
        let (n_cs, n_is, n_ms, n_tp) = (
            count("num_CS_col")?,
            count("num_IS_col")?,
            count("num_MS_col")?,
            count("num_TP_col")?,
        );
        let counts = [(CS, n_cs), (IS, n_is), (MS, n_ms), (TP, n_tp)];
        let total = counts
            .iter()
            .try_fold(0usize, |t, &(_, n)| t.checked_add(n));
        let order = counts.iter().flat_map(|&(t, n)| std::iter::repeat_n(t, n));
        if total != Some(bs.len())
            || !bs.iter().copied().eq(order)
            || user.len() != sorted.len()
            || sorted.len() != bs.len()
        {
            return keys.invalid(format!(
                "bs_sorted {bs:?} does not list {n_cs} cubic, {n_is} I-, {n_ms} M- and {n_tp} thin plate splines for {} GAM columns",
                sorted.len()
            ));
        }
        Ok(Layout {
            user,
            sorted,
            bs,
            knots: ints(keys, "num_knots_sorted")?,
            preds: ints(keys, "_d")?,
            orders: if n_is + n_ms > 0 {
                ints(keys, "spline_orders_sorted")?
            } else {
                Vec::new()
            },
            n_cs,
            n_tp,
        })
    }

    /// Decodes every GAM column: its knots and matrices, where its predictors are in the
    /// row (`inputs`) and where genmodel writes its values.
    fn columns(
        &self,
        keys: &Keys,
        inputs: &[InputColumn],
        plain: usize,
        nf: usize,
    ) -> LoadResult<Vec<GamColumn>> {
        let mut knots_blob = Numbers::open(keys, "knots")?;
        let mut zt_blob = Numbers::open(keys, "zTranspose")?;
        let mut binv_blob = if self.n_cs > 0 {
            Some(Numbers::open(keys, "_binvD")?)
        } else {
            None
        };
        let mut tp = if self.n_tp > 0 {
            Some(ThinPlateParts::read(
                keys,
                self.n_cs,
                self.n_tp,
                &self.preds,
            )?)
        } else {
            None
        };
        // Shapes and blobs first: the M-splines need the other columns' matrices.
        let mut specs = Vec::with_capacity(self.bs.len());
        let mut zts = Vec::with_capacity(self.bs.len());
        for (c, names) in self.sorted.iter().enumerate() {
            let bs = self.bs[c];
            let k = size_at(keys, &self.knots, c, "num_knots_sorted")?;
            let d = size_at(keys, &self.preds, c, "_d")?;
            let order = if matches!(bs, IS | MS) {
                let o = size_at(keys, &self.orders, c, "spline_orders_sorted")?;
                if o == 0 || o > MAX_SPLINE_ORDER {
                    return unsupported(format!(
                        "spline order {o} (1 to {MAX_SPLINE_ORDER} are scored)"
                    ));
                }
                o
            } else {
                0
            };
            let min_knots = if bs == CS { 3 } else { 2 };
            let want_preds = if bs == TP { names.len() } else { 1 };
            if k < min_knots || d != want_preds {
                return keys.invalid(format!(
                    "GAM column {names:?}: {k} knots over {d} predictors"
                ));
            }
            let knots = knots_blob.matrix(d, k)?;
            // h2o writes them sorted; genmodel's cubic bin search relies on it.
            if bs == CS && !knots[0].windows(2).all(|w| w[0] <= w[1]) {
                return keys.invalid(format!(
                    "knots of GAM column {names:?} are not in ascending order: {:?}",
                    knots[0]
                ));
            }
            // zTranspose shapes, as GamMojoReader reads them
            let (rows, cols) = match bs {
                IS => (0, 0),
                MS => (k + order - 3, k + order - 2),
                _ => (k - 1, k),
            };
            zts.push(zt_blob.matrix(rows, cols)?);
            let binv = match (bs, binv_blob.as_mut()) {
                (CS, Some(b)) => b.matrix(k - 2, k)?,
                _ => Vec::new(),
            };
            specs.push((k, d, order, knots, binv));
        }
        let source = |name: &String| -> LoadResult<usize> {
            match inputs.iter().find(|c| &c.name == name).map(|c| c.slot) {
                Some(Slot::Feature(at)) => Ok(at),
                _ => keys.invalid(format!(
                    "sorted GAM column {name:?} is not one of gam_columns"
                )),
            }
        };
        let mut columns = Vec::with_capacity(specs.len());
        let mut write = plain;
        let (mut ms_counter, mut tp_counter) = (0, 0);
        for (c, (k, d, order, knots, binv_d)) in specs.into_iter().enumerate() {
            let names = &self.sorted[c];
            let sources = names[..d]
                .iter()
                .map(&source)
                .collect::<LoadResult<Vec<_>>>()?;
            let (spline, width) = match self.bs[c] {
                CS => {
                    let row = knots.into_iter().next().unwrap_or_default();
                    let hj = row.windows(2).map(|w| w[1] - w[0]).collect();
                    let zt = zts[c].clone();
                    let spline = Spline::Cubic {
                        knots: row,
                        hj,
                        binv_d,
                        zt,
                    };
                    (spline, k - 1)
                }
                IS => (Spline::I(ISpline::new(order, &knots[0])), k + order - 2),
                MS => {
                    let m = k + order - 2;
                    let zt = self.ms_matrix(keys, &zts, ms_counter, c, m)?;
                    ms_counter += 1;
                    let spline = Spline::M {
                        basis: MSpline::new(order, &knots[0]),
                        zt,
                    };
                    (spline, m - 1)
                }
                _ => {
                    let parts = tp
                        .as_mut()
                        .expect("thin plate parts are read when num_TP_col > 0");
                    let zt = zts[c].clone();
                    let spline = parts.spline(keys, tp_counter, names, knots, k, zt)?;
                    tp_counter += 1;
                    (spline, k - 1)
                }
            };
            if write + width > nf {
                return unsupported(format!(
                    "GAM column {names:?}: genmodel 3.46 writes its {width} columns from position {write}, past the {nf} features"
                ));
            }
            columns.push(GamColumn {
                spline,
                sources,
                start: write,
                width,
            });
            write += k - 1;
        }
        Ok(columns)
    }

    /// The matrix genmodel centres M-spline `c` (the `counter`-th, `m` basis functions)
    /// with: `zTranspose[counter]`, which must be at least `(m - 1) × m`.
    fn ms_matrix(
        &self,
        keys: &Keys,
        zts: &[Vec<Vec<f64>>],
        counter: usize,
        c: usize,
        m: usize,
    ) -> LoadResult<Vec<Vec<f64>>> {
        let zt = &zts[counter];
        if counter != c {
            tracing::debug!(file = %keys.ini_name(), column = ?self.sorted[c], with = ?self.sorted[counter], "M-spline centred with another GAM column's matrix, as genmodel 3.46 does");
        }
        if zt.len() < m - 1 || zt.iter().any(|r| r.len() < m) {
            return unsupported(format!(
                "GAM column {:?}: genmodel 3.46 centres this M-spline with the matrix of GAM column {:?}, which is too small ({} × {} for {} × {m} values) and throws on every row",
                self.sorted[c],
                self.sorted[counter],
                zt.len(),
                zt.first().map_or(0, Vec::len),
                m - 1
            ));
        }
        Ok(zt.clone())
    }

    fn metadata(&self, keys: &Keys, plain: usize, columns: &[GamColumn]) -> Map<String, Value> {
        let names = &keys.mojo.ini.columns;
        let mut at = plain;
        let cols: Vec<Value> = self
            .sorted
            .iter()
            .zip(columns)
            .enumerate()
            .map(|(c, (preds, col))| {
                // h2o names each column's values one after the other.
                let expanded: Vec<&String> = names.iter().skip(at).take(col.width).collect();
                at += col.width;
                let mut v = json!({
                    "predictors": preds,
                    "bs": self.bs[c],
                    "spline": spline_name(self.bs[c]),
                    "num_knots": self.knots[c],
                    "expanded_columns": expanded,
                });
                if matches!(self.bs[c], IS | MS) {
                    v["spline_order"] = json!(self.orders[c]);
                }
                v
            })
            .collect();
        let mut m = Map::new();
        m.insert(
            "gam".into(),
            json!({ "columns": cols, "features": &names[..plain] }),
        );
        m
    }
}

/// The thin plate blobs of all thin plate columns, as `GamMojoReader` reads them.
struct ThinPlateParts {
    m: Vec<i64>,
    big_m: Vec<i64>,
    /// `zTransposeCS[t]`: `(num_knots_TP - M) × num_knots_TP`.
    zt_cs: Vec<Vec<Vec<f64>>>,
    /// `polynomialBasisList[t]`: `M × _d[num_CS_col + t]` (genmodel's offset).
    poly: Vec<Vec<Vec<i32>>>,
}

impl ThinPlateParts {
    fn read(keys: &Keys, n_cs: usize, n_tp: usize, pred_n: &[i64]) -> LoadResult<ThinPlateParts> {
        if keys.raw("standardize").is_none() {
            return keys.invalid("key `standardize` is missing");
        }
        if keys.bool_or("standardize", false)? {
            return unsupported(
                "a thin plate GAM with standardize = true (genmodel 3.46 reads its column means and scales as empty and throws on every row)",
            );
        }
        // Genmodel reads these two with zero sizes, but reads them.
        Numbers::open(keys, "gamColMeansRaw")?;
        Numbers::open(keys, "gamColStdRaw")?;
        let m = ints(keys, "_m")?;
        let big_m = ints(keys, "_M")?;
        let knots_tp = ints(keys, "num_knots_TP")?;
        let mut cs_blob = Numbers::open(keys, "zTransposeCS")?;
        let mut poly_blob = Numbers::open(keys, "polynomialBasisList")?;
        let mut zt_cs = Vec::with_capacity(n_tp);
        let mut poly = Vec::with_capacity(n_tp);
        for t in 0..n_tp {
            let kt = size_at(keys, &knots_tp, t, "num_knots_TP")?;
            let mm = size_at(keys, &big_m, t, "_M")?;
            size_at(keys, &m, t, "_m")?;
            if mm > kt {
                return keys.invalid(format!(
                    "_M[{t}] = {mm} is more than num_knots_TP[{t}] = {kt}"
                ));
            }
            zt_cs.push(cs_blob.matrix(kt - mm, kt)?);
            let pn = size_at(keys, pred_n, n_cs + t, "_d")?;
            poly.push(poly_blob.int_matrix(mm, pn)?);
        }
        Ok(ThinPlateParts {
            m,
            big_m,
            zt_cs,
            poly,
        })
    }

    /// The spline of thin plate column `t` (sorted names `names`, one per predictor, `k`
    /// knots).
    fn spline(
        &mut self,
        keys: &Keys,
        t: usize,
        names: &[String],
        knots: Vec<Vec<f64>>,
        k: usize,
        zt: Vec<Vec<f64>>,
    ) -> LoadResult<Spline> {
        let d = names.len();
        let m = self.m[t] as i32;
        let mm = self.big_m[t] as usize;
        let zt_cs = std::mem::take(&mut self.zt_cs[t]);
        let poly = std::mem::take(&mut self.poly[t]);
        if mm > k || zt_cs.len() < k - mm || zt_cs.iter().any(|r| r.len() < k) {
            return keys.invalid(format!(
                "thin plate column {names:?}: zTransposeCS does not fit {k} knots and {mm} polynomial terms"
            ));
        }
        if poly.iter().any(|e| e.len() < d) {
            return unsupported(format!(
                "thin plate column {names:?} over {d} predictors: genmodel 3.46 reads its polynomial terms with the predictor count of another GAM column ({}) and throws on every row",
                poly.first().map_or(0, Vec::len)
            ));
        }
        let even = d.is_multiple_of(2);
        Ok(Spline::ThinPlate {
            knots,
            m,
            even,
            constant: tp_constant(m, d as i32, even),
            zt_cs: zt_cs.into_iter().take(k - mm).collect(),
            poly,
            zt,
        })
    }
}
