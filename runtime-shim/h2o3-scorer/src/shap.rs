//! Prediction contributions (SHAP values) of tree models, computed the way h2o-genmodel
//! computes them, so that `H2oScorer::contributions` returns genmodel's `float`s.
//!
//! Genmodel (3.46) offers contributions for GBM, DRF and XGBoost MOJOs of the binomial
//! and regression categories through `EasyPredictModelWrapper` (`PredictCsv
//! --predictContributions`). All three run the same path-dependent TreeSHAP over every
//! tree (Lundberg et al., "Consistent individualized feature attribution for tree
//! ensembles", algorithm 2, as ported from XGBoost's `tree_model.cc` into genmodel's
//! `TreeSHAP`), in `float` arithmetic, into one `float` array of `features + 1` cells
//! whose last cell is the bias:
//!
//! * the bias starts at the model's initial prediction (GBM `init_f`, XGBoost's base
//!   margin, DRF 0), cast to `float`;
//! * per tree, in tree order, the bias gains the tree's expected value (the
//!   cover-weighted mean of its leaves; 0 when the root's cover is 0) and the features
//!   on the row's path gain their Shapley shares of the leaf values;
//! * a node's cover is its training weight: for H2O trees the `weightL`/`weightR` of the
//!   parent's record in `trees/tCC_GGG_aux.bin` (the root's is their sum; a tree that is
//!   a single leaf has cover 0 and so contributes nothing), for XGBoost the node's
//!   `sum_hess` statistic of the booster;
//! * the branch a row takes follows genmodel's tree *graph* (`SharedTreeNode.next`), not
//!   the compressed-tree scorer: a missing value, a level outside a split's level set and
//!   a level at or beyond the column's domain size follow the NA direction; an
//!   "NA versus the rest" split sends every present value left. XGBoost follows the
//!   booster (`x < threshold` goes left, NaN takes the default branch);
//! * DRF then rescales every non-zero cell `c` (the bias included) to `c / ntrees` for
//!   regression and to `1 / (k + 1) - c / ntrees` for binomial models, `k` being the
//!   number of variables with a non-zero relative importance in
//!   `experimental/modelDetails.json` (genmodel needs that file: without it, or for
//!   `binomial_double_trees`, it refuses, and so does this scorer).
//!
//! The values are in the model's link space (log-odds for Bernoulli GBM and XGBoost
//! logistic, the response for regression); an offset column is ignored, and XGBoost
//! `dart` tree weights are not applied, both as in genmodel. GBM and DRF contributions
//! are per input column (H2O's "original" features); XGBoost's are per one-hot slot,
//! named `<column>.<level>` and `<column>.missing(NA)` (its "transformed" features).
//! Multinomial models are refused, as genmodel refuses them.

use std::cell::RefCell;

/// Deepest tree (in nodes from root to leaf) whose contributions are computed. Each
/// level costs a recursion frame and the workspace grows with its square.
pub(crate) const MAX_DEPTH: usize = 512;

/// How a node sends a present value (NaN always takes the NA direction).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Split {
    /// H2O numeric split: right when `x >= t`.
    AtLeast(f32),
    /// XGBoost split: left when `x < t`.
    Below(f32),
    /// H2O level set: right when the level is in the set; a level outside
    /// `bitoff .. bitoff + nbits` takes the NA direction. The bits start at byte `start`
    /// of the tree's bit pool.
    Set { start: u32, bitoff: i32, nbits: i32 },
    /// H2O "NA versus the rest": every present value goes left.
    NaVsRest,
}

/// One node of a tree as TreeSHAP sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    /// Children, or [`LEAF`] in `left` for a leaf.
    pub left: u32,
    pub right: u32,
    /// The feature (contribution cell) the node splits on.
    pub feature: u32,
    /// Missing values (and out-of-domain levels) go left.
    pub na_left: bool,
    pub split: Split,
    /// Domain size of a categorical split column (a level `>=` it takes the NA
    /// direction), `-1` for none.
    pub domain: i32,
    /// Cover: the training weight that reached the node.
    pub weight: f32,
    /// The leaf value (leaves only).
    pub value: f32,
}

/// Marks a leaf in [`Node::left`].
pub(crate) const LEAF: u32 = u32::MAX;

/// A tree ready for TreeSHAP: node 0 is the root.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
    bits: Vec<u8>,
    /// Genmodel's `expectedTreeValue`.
    expected: f32,
    /// Nodes on the longest root-to-leaf path.
    depth: usize,
}

impl Tree {
    /// Checks that `nodes` form a tree rooted at 0 (every child index in range, no node
    /// reached twice, depth at most [`MAX_DEPTH`]) and computes its expected value.
    pub(crate) fn new(nodes: Vec<Node>, bits: Vec<u8>) -> Result<Tree, String> {
        if nodes.is_empty() {
            return Err("a tree without nodes".into());
        }
        let n = nodes.len();
        let mut seen = vec![false; n];
        // Depth-first from the root: (node, depth); post-order list for the means.
        let mut order = Vec::with_capacity(n);
        let mut stack = vec![(0u32, 1usize)];
        let mut depth = 0;
        while let Some((i, d)) = stack.pop() {
            let iu = i as usize;
            if iu >= n {
                return Err(format!("a child index {i} beyond the {n} nodes"));
            }
            if std::mem::replace(&mut seen[iu], true) {
                return Err(format!("node {i} is reached twice (not a tree)"));
            }
            if d > MAX_DEPTH {
                return Err(format!("the tree is deeper than {MAX_DEPTH} levels"));
            }
            depth = depth.max(d);
            order.push(iu);
            let node = &nodes[iu];
            if node.left != LEAF {
                stack.push((node.left, d + 1));
                stack.push((node.right, d + 1));
            }
        }
        // `nodeMeanValue`, children before parents: reverse pre-order works because a
        // child is always pushed after its parent.
        let mut mean = vec![0.0f32; n];
        for &i in order.iter().rev() {
            let node = &nodes[i];
            mean[i] = if node.weight == 0.0 {
                0.0
            } else if node.left == LEAF {
                node.value
            } else {
                let (l, r) = (node.left as usize, node.right as usize);
                (nodes[l].weight * mean[l] + nodes[r].weight * mean[r]) / node.weight
            };
        }
        Ok(Tree {
            expected: mean[0],
            nodes,
            bits,
            depth,
        })
    }

    /// Size of genmodel's path workspace for this tree.
    fn workspace(&self) -> usize {
        let maxd = self.depth + 2;
        maxd * (maxd + 1) / 2
    }

    /// The child a row follows (`SharedTreeNode.next` / XGBoost `RegTreeNode.next`).
    #[inline]
    fn hot(&self, node: &Node, x: f64) -> (u32, u32) {
        let left = (node.left, node.right);
        let right = (node.right, node.left);
        let na = if node.na_left { left } else { right };
        if x.is_nan() {
            return na;
        }
        let level = x as i32;
        let beyond_domain = node.domain >= 0 && node.domain <= level;
        let go_right = match node.split {
            // Left only when `x < t` (a NaN threshold sends everything right).
            Split::Below(t) => x.partial_cmp(&f64::from(t)) != Some(std::cmp::Ordering::Less),
            Split::AtLeast(t) => {
                if beyond_domain {
                    return na;
                }
                x >= f64::from(t)
            }
            Split::Set {
                start,
                bitoff,
                nbits,
            } => {
                let b = level.wrapping_sub(bitoff);
                if !(0..nbits).contains(&b) || beyond_domain {
                    return na;
                }
                self.bits[start as usize + (b >> 3) as usize] & (1 << (b & 7)) != 0
            }
            Split::NaVsRest => false,
        };
        if go_right {
            right
        } else {
            left
        }
    }
}

/// `TreeSHAP.PathElement`.
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    feature: i32,
    zero: f32,
    one: f32,
    pweight: f32,
}

/// `extendPath`: adds a split with the given fractions at depth `d` of `path`.
fn extend_path(path: &mut [PathElement], d: usize, zero: f32, one: f32, feature: i32) {
    path[d] = PathElement {
        feature,
        zero,
        one,
        pweight: if d == 0 { 1.0 } else { 0.0 },
    };
    let dp1 = (d + 1) as f32;
    for i in (0..d).rev() {
        path[i + 1].pweight += one * path[i].pweight * (i + 1) as f32 / dp1;
        path[i].pweight = zero * path[i].pweight * (d - i) as f32 / dp1;
    }
}

/// `unwindPath`: removes element `at` from a path of depth `d`.
fn unwind_path(path: &mut [PathElement], d: usize, at: usize) {
    let one = path[at].one;
    let zero = path[at].zero;
    let mut next = path[d].pweight;
    let dp1 = (d + 1) as f32;
    for i in (0..d).rev() {
        if one != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next * dp1 / ((i + 1) as f32 * one);
            next = tmp - path[i].pweight * zero * (d - i) as f32 / dp1;
        } else if zero != 0.0 {
            path[i].pweight = path[i].pweight * dp1 / (zero * (d - i) as f32);
        } else {
            path[i].pweight = 0.0;
        }
    }
    for i in at..d {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
}

/// `unwoundPathSum`: the total permutation weight if element `at` were unwound; `None`
/// where genmodel throws ("Unique path must have zero weight").
fn unwound_path_sum(path: &[PathElement], d: usize, at: usize) -> Option<f32> {
    let one = path[at].one;
    let zero = path[at].zero;
    let mut next = path[d].pweight;
    let mut total = 0.0f32;
    let dp1 = (d + 1) as f32;
    for i in (0..d).rev() {
        if one != 0.0 {
            let tmp = next * dp1 / ((i + 1) as f32 * one);
            total += tmp;
            next = path[i].pweight - tmp * zero * ((d - i) as f32 / dp1);
        } else if zero != 0.0 {
            total += path[i].pweight / zero / ((d - i) as f32 / dp1);
        } else if path[i].pweight != 0.0 {
            return None;
        }
    }
    Some(total)
}

/// The state of one contributions computation.
struct Walk<'a, F: Fn(usize) -> f64> {
    tree: &'a Tree,
    x: &'a F,
    phi: &'a mut [f32],
    ws: &'a mut [PathElement],
}

impl<F: Fn(usize) -> f64> Walk<'_, F> {
    /// `treeShap` with `condition = 0`; `base` is the parent's path offset in the
    /// workspace. Returns `false` where genmodel throws.
    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &mut self,
        at: u32,
        mut d: usize,
        base: usize,
        parent_zero: f32,
        parent_one: f32,
        parent_feature: i32,
        condition_fraction: f32,
    ) -> bool {
        if condition_fraction == 0.0 {
            return true;
        }
        // `PathPointer.move(d)`: this node's path is a copy of the parent's, d further.
        let off = base + d;
        self.ws.copy_within(base..base + d, off);
        let path = &mut self.ws[off..];
        extend_path(path, d, parent_zero, parent_one, parent_feature);
        let node = self.tree.nodes[at as usize];
        if node.left == LEAF {
            for i in 1..=d {
                let Some(w) = unwound_path_sum(path, d, i) else {
                    return false;
                };
                let el = path[i];
                let cell = &mut self.phi[el.feature as usize];
                *cell += w * (el.one - el.zero) * node.value * condition_fraction;
            }
            return true;
        }
        let (hot, cold) = self.tree.hot(&node, (self.x)(node.feature as usize));
        let w = node.weight;
        let nodes = &self.tree.nodes;
        let hot_zero = if w != 0.0 {
            nodes[hot as usize].weight / w
        } else {
            0.5
        };
        let cold_zero = if w != 0.0 {
            nodes[cold as usize].weight / w
        } else {
            0.5
        };
        let mut incoming_zero = 1.0f32;
        let mut incoming_one = 1.0f32;
        let split = node.feature as i32;
        if let Some(k) = (0..=d).find(|&k| path[k].feature == split) {
            incoming_zero = path[k].zero;
            incoming_one = path[k].one;
            unwind_path(path, d, k);
            d -= 1;
        }
        self.recurse(
            hot,
            d + 1,
            off,
            hot_zero * incoming_zero,
            incoming_one,
            split,
            condition_fraction,
        ) && self.recurse(
            cold,
            d + 1,
            off,
            cold_zero * incoming_zero,
            0.0,
            split,
            condition_fraction,
        )
    }
}

thread_local! {
    /// The path workspace, kept per thread like genmodel's `ThreadLocal` one.
    static WORKSPACE: RefCell<Vec<PathElement>> = const { RefCell::new(Vec::new()) };
}

/// Genmodel's `getContribs` step after the trees.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Finish {
    /// GBM, XGBoost: the sums as they are.
    Raw,
    /// DRF: every non-zero cell `c` becomes `ratio + c / normalizer`.
    Drf { ratio: f32, normalizer: f32 },
}

/// Which features the contributions are over (the scoring API's Shapley types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContributionKind {
    /// One per input column (GBM, DRF): `CONTRIBUTION_ORIGINAL`.
    Original,
    /// One per one-hot slot of the categorical columns plus the numeric columns
    /// (XGBoost): `CONTRIBUTION_TRANSFORMED`.
    Transformed,
}

/// A tree ensemble's contributions predictor (genmodel's `TreeSHAPEnsemble` plus the
/// model's `ContributionsPredictor`).
#[derive(Debug)]
pub(crate) struct Contributions {
    pub names: Vec<String>,
    pub kind: ContributionKind,
    pub trees: Vec<Tree>,
    pub init: f32,
    pub finish: Finish,
    workspace: usize,
}

impl Contributions {
    pub(crate) fn new(
        names: Vec<String>,
        kind: ContributionKind,
        trees: Vec<Tree>,
        init: f32,
        finish: Finish,
    ) -> Contributions {
        let workspace = trees.iter().map(Tree::workspace).max().unwrap_or(0);
        Contributions {
            names,
            kind,
            trees,
            init,
            finish,
            workspace,
        }
    }

    /// The contributions of one row; `x(i)` is the value of feature `i`. `None` where
    /// genmodel throws.
    pub(crate) fn compute(&self, x: &impl Fn(usize) -> f64) -> Option<Vec<f32>> {
        let mut phi = vec![0.0f32; self.names.len()];
        let bias = phi.len() - 1;
        phi[bias] += self.init;
        let ok = WORKSPACE.with(|ws| {
            let mut ws = ws.borrow_mut();
            if ws.len() < self.workspace {
                ws.resize(self.workspace, PathElement::default());
            }
            for tree in &self.trees {
                phi[bias] += tree.expected;
                ws[0] = PathElement::default();
                let mut walk = Walk {
                    tree,
                    x,
                    phi: &mut phi,
                    ws: &mut ws,
                };
                if !walk.recurse(0, 0, 0, 1.0, 1.0, -1, 1.0) {
                    return false;
                }
            }
            true
        });
        if !ok {
            return None;
        }
        if let Finish::Drf { ratio, normalizer } = self.finish {
            for c in &mut phi {
                if *c != 0.0 {
                    *c = ratio + *c / normalizer;
                }
            }
        }
        Some(phi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(weight: f32, value: f32) -> Node {
        Node {
            left: LEAF,
            right: LEAF,
            feature: 0,
            na_left: false,
            split: Split::NaVsRest,
            domain: -1,
            weight,
            value,
        }
    }

    fn split(feature: u32, t: f32, left: u32, right: u32, weight: f32) -> Node {
        Node {
            left,
            right,
            feature,
            na_left: true,
            split: Split::AtLeast(t),
            domain: -1,
            weight,
            value: 0.0,
        }
    }

    /// x0 < 0.5 ? (x1 < 0.5 ? 1 : 2) : 4, covers 10 = 6 (4 + 2) + 4.
    fn two_feature_tree() -> Tree {
        Tree::new(
            vec![
                split(0, 0.5, 1, 2, 10.0),
                split(1, 0.5, 3, 4, 6.0),
                leaf(4.0, 4.0),
                leaf(4.0, 1.0),
                leaf(2.0, 2.0),
            ],
            Vec::new(),
        )
        .unwrap()
    }

    /// Brute-force Shapley values of the path-dependent value function (the expectation
    /// over the features not in S, following covers): the definition TreeSHAP computes.
    fn brute_force(tree: &Tree, x: &[f64]) -> Vec<f64> {
        fn value(tree: &Tree, at: usize, x: &[f64], s: u32) -> f64 {
            let n = &tree.nodes[at];
            if n.left == LEAF {
                return f64::from(n.value);
            }
            if s & (1 << n.feature) != 0 {
                let (hot, _) = tree.hot(n, x[n.feature as usize]);
                return value(tree, hot as usize, x, s);
            }
            let (l, r) = (n.left as usize, n.right as usize);
            let (wl, wr) = (
                f64::from(tree.nodes[l].weight),
                f64::from(tree.nodes[r].weight),
            );
            (wl * value(tree, l, x, s) + wr * value(tree, r, x, s)) / f64::from(n.weight)
        }
        let m = x.len();
        let fact = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
        let mut phi = vec![0.0; m + 1];
        for (i, p) in phi.iter_mut().enumerate().take(m) {
            for s in 0u32..(1 << m) {
                if s & (1 << i) != 0 {
                    continue;
                }
                let k = s.count_ones() as usize;
                let w = fact(k) * fact(m - k - 1) / fact(m);
                *p += w * (value(tree, 0, x, s | (1 << i)) - value(tree, 0, x, s));
            }
        }
        phi[m] = value(tree, 0, x, 0);
        phi
    }

    #[test]
    fn matches_the_shapley_definition() {
        let tree = two_feature_tree();
        assert_eq!(tree.expected, (4.0 * 4.0 + 4.0 * 1.0 + 2.0 * 2.0) / 10.0);
        let c = Contributions::new(
            vec!["x0".into(), "x1".into(), "BiasTerm".into()],
            ContributionKind::Original,
            vec![tree.clone()],
            0.0,
            Finish::Raw,
        );
        let cases: [(&str, [f64; 2]); 5] = [
            ("left-left", [0.0, 0.0]),
            ("left-right", [0.0, 1.0]),
            ("right", [1.0, 0.0]),
            ("missing goes left", [f64::NAN, 1.0]),
            ("both missing", [f64::NAN, f64::NAN]),
        ];
        for (name, x) in cases {
            let got = c.compute(&|i| x[i]).unwrap();
            let want = brute_force(&tree, &x);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (f64::from(*g) - w).abs() < 1e-6,
                    "{name}: {got:?} vs {want:?}"
                );
            }
            // Local accuracy: the contributions add up to the tree's prediction.
            let sum: f32 = got.iter().sum();
            let mut at = 0usize;
            loop {
                let n = &tree.nodes[at];
                if n.left == LEAF {
                    assert!(
                        (sum - n.value).abs() < 1e-6,
                        "{name}: sum {sum} != leaf {}",
                        n.value
                    );
                    break;
                }
                at = tree.hot(n, x[n.feature as usize]).0 as usize;
            }
        }
    }

    #[test]
    fn graph_semantics_of_the_split_kinds() {
        // Level set over levels 2..10 (bit of level 3 set), domain of 6 levels.
        let bits = vec![0b0000_0010];
        let mut n = split(0, 0.0, 1, 2, 2.0);
        n.split = Split::Set {
            start: 0,
            bitoff: 2,
            nbits: 8,
        };
        n.domain = 6;
        n.na_left = false;
        let tree = Tree::new(vec![n, leaf(1.0, 1.0), leaf(1.0, 2.0)], bits).unwrap();
        let node = tree.nodes[0];
        let cases = [
            ("in the set", 3.0, 2),
            ("in range, not in the set", 4.0, 1),
            ("below the range: NA direction", 1.0, 2),
            ("at the domain size: NA direction", 6.0, 2),
            ("missing", f64::NAN, 2),
        ];
        for (name, x, want) in cases {
            assert_eq!(tree.hot(&node, x).0, want, "{name}");
        }
        let mut rest = node;
        rest.split = Split::NaVsRest;
        assert_eq!(tree.hot(&rest, 5.0).0, 1, "NA vs rest: present goes left");
        let mut xgb = node;
        xgb.split = Split::Below(2.5);
        xgb.domain = -1;
        xgb.na_left = true;
        let cases = [
            ("below", 2.0, 1),
            ("equal goes right", 2.5, 2),
            ("NaN default", f64::NAN, 1),
        ];
        for (name, x, want) in cases {
            assert_eq!(tree.hot(&xgb, x).0, want, "{name}");
        }
    }

    #[test]
    fn refuses_malformed_trees() {
        let cases = [
            (
                "cycle",
                vec![split(0, 0.5, 0, 1, 1.0), leaf(1.0, 1.0)],
                "reached twice",
            ),
            (
                "out of range",
                vec![split(0, 0.5, 1, 7, 1.0), leaf(1.0, 1.0)],
                "beyond",
            ),
            ("empty", vec![], "without nodes"),
        ];
        for (name, nodes, needle) in cases {
            let e = Tree::new(nodes, Vec::new()).expect_err(name);
            assert!(e.contains(needle), "{name}: {e}");
        }
        // A chain deeper than MAX_DEPTH.
        let mut nodes = Vec::new();
        for i in 0..MAX_DEPTH as u32 {
            nodes.push(split(0, 0.5, 2 * i + 1, 2 * i + 2, 1.0));
            nodes.push(leaf(1.0, 1.0));
        }
        nodes.push(leaf(1.0, 1.0));
        let e = Tree::new(nodes, Vec::new()).expect_err("deep");
        assert!(e.contains("deeper"), "{e}");
    }

    #[test]
    fn single_leaf_and_zero_cover_trees_contribute_nothing() {
        let single = Tree::new(vec![leaf(0.0, 5.0)], Vec::new()).unwrap();
        let c = Contributions::new(
            vec!["x0".into(), "BiasTerm".into()],
            ContributionKind::Original,
            vec![single],
            0.25,
            Finish::Drf {
                ratio: 0.5,
                normalizer: -2.0,
            },
        );
        // Only the bias (the init) is non-zero, and DRF's rescaling touches only it.
        assert_eq!(c.compute(&|_| 1.0).unwrap(), vec![0.0, 0.5 + 0.25 / -2.0]);
    }
}
