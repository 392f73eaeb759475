//! H2O's compressed trees (`trees/tCC_GGG.bin`), decoded once at load into a flat node
//! array and walked per row.
//!
//! A tree file is H2O's `CompressedTree` byte stream in little-endian order: each split
//! node is `[type u8][column u16][NA direction u8][split]` followed by the byte size of
//! its left subtree (1–4 bytes, absent when the left child is a leaf), the left subtree
//! and the right subtree; a leaf is a bare `f32`, and a whole tree that is one leaf is
//! `[type][0xFFFF][f32]`. The split is an `f32` threshold (go right when `x >= t`), an
//! inline 32-bit level set, or a level set with an offset; it is absent for an
//! "NA versus the rest" split. Genmodel walks these bytes on every row; here they are
//! parsed into [`Node`]s so that a row only follows indices.
//!
//! The three historic readers of genmodel (`ScoreTree0` for `mojo_version` 1.00,
//! `ScoreTree1` for 1.10, `ScoreTree2` for every later version) differ in how a level
//! set is stored and in what happens to a level outside it; [`TreeVersion`] keeps those
//! differences.

use std::collections::{HashMap, HashSet};

use crate::shap;

/// Which of genmodel's tree readers a MOJO needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeVersion {
    /// `mojo_version` 1.00: a level outside the set goes left; NA follows the NA direction.
    V0,
    /// 1.10: a level outside the set follows the NA direction.
    V1,
    /// 1.20 and later: also a level index beyond the column's domain follows the NA direction,
    /// and level sets carry a 32-bit bit count.
    V2,
}

impl TreeVersion {
    pub(crate) fn of(mojo_version: f64) -> TreeVersion {
        if mojo_version == 1.0 {
            TreeVersion::V0
        } else if mojo_version == 1.1 {
            TreeVersion::V1
        } else {
            TreeVersion::V2
        }
    }
}

/// A child reference: an index into `nodes`, or into `leaves` when [`LEAF`] is set.
type Child = u32;
const LEAF: u32 = 1 << 31;

#[derive(Debug, Clone, Copy)]
enum Test {
    /// Go right when the value is `>=` the threshold.
    Num(f32),
    /// Go right when the level is in the set; the bits start at byte `start` of the tree's
    /// bit pool and cover levels `bitoff .. bitoff + nbits`.
    Set { start: u32, bitoff: i32, nbits: i32 },
    /// Every non-missing value goes left. `range` is the level range of the last level
    /// set above this node, which genmodel (1.10 and later) still tests when the node's
    /// type says "level set": out of that range the value follows the NA direction.
    NaVsRest { range: Option<(i32, i32)> },
}

#[derive(Debug, Clone, Copy)]
struct Node {
    col: u32,
    /// Missing values go right.
    na_right: bool,
    test: Test,
    left: Child,
    right: Child,
}

/// One decoded tree.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
    leaves: Vec<f32>,
    bits: Vec<u8>,
    root: Child,
    /// The tree as [`Tree::score`] walks it: nodes and leaves in one array, depth first
    /// with a node's left subtree right after it, so a row touches few cache lines.
    steps: Vec<Step>,
    /// The level bitmaps of [`STEP_CATEGORICAL`] steps: bit `l` set when level `l` goes
    /// right.
    lut: Vec<u64>,
}

/// One entry of [`Tree::steps`], 16 bytes. A split's left child is the next step. The
/// usual splits are tested from the step alone: a threshold on a numeric column
/// (without branches on the value), and (`mojo_version` 1.20 and later) a level set on a
/// categorical column, through a bitmap over the column's domain computed at load with
/// genmodel's rules ([`Tree::goes_right`]); any other split ([`STEP_GENERAL`]) runs
/// those rules on its [`Node`].
#[derive(Debug, Clone, Copy)]
struct Step {
    /// The threshold of a numeric split or the value of a leaf (both `f32` in the
    /// file); for a [`STEP_CATEGORICAL`] step the bits `start << 32 | domain size`, its
    /// bitmap being `lut[start..]`.
    value: f64,
    /// The column (for [`STEP_GENERAL`], the index in [`Tree::nodes`]) in the low bits,
    /// the kind ([`STEP_KIND`]) and [`STEP_NA_RIGHT`].
    meta: u32,
    right: u32,
}

/// The kind bits of [`Step::meta`]: 0 for a numeric split, or one of the three below.
const STEP_KIND: u32 = 3 << 29;
const STEP_LEAF: u32 = 1 << 29;
const STEP_GENERAL: u32 = 2 << 29;
const STEP_CATEGORICAL: u32 = 3 << 29;
const STEP_NA_RIGHT: u32 = 1 << 31;
const STEP_INDEX: u32 = STEP_LEAF - 1;
/// Largest domain a [`STEP_CATEGORICAL`] bitmap is made for.
const LUT_MAX_LEVELS: i32 = 1 << 16;

/// Where a tree file is malformed (byte offset and what was expected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeError(pub String);

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], TreeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(TreeError(format!(
                "{what} at byte {} runs past the end ({} bytes)",
                self.pos,
                self.bytes.len()
            ))),
        }
    }
    fn u8(&mut self, what: &str) -> Result<u8, TreeError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, TreeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u24(&mut self, what: &str) -> Result<u32, TreeError> {
        let b = self.take(3, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }
    fn i32(&mut self, what: &str) -> Result<i32, TreeError> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn f32(&mut self, what: &str) -> Result<f32, TreeError> {
        let b = self.take(4, what)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A position still to be decoded: a node (or header leaf) whose reference goes into
/// `slot` of node `parent` (`None` for the root).
struct Pending {
    pos: usize,
    parent: Option<(usize, bool)>,
    last_set: Option<(i32, i32)>,
}

impl Tree {
    /// Decodes a tree file. `n_cols` bounds the column indices a split may use.
    /// `cat_len[c]` is the domain size of categorical column `c` and `-1` for numeric ones.
    pub(crate) fn decode(
        bytes: &[u8],
        version: TreeVersion,
        n_cols: usize,
        cat_len: &[i32],
    ) -> Result<Tree, TreeError> {
        if n_cols > STEP_INDEX as usize {
            return Err(TreeError(format!(
                "{n_cols} features are too many for a tree"
            )));
        }
        let mut tree = Tree {
            nodes: Vec::new(),
            leaves: Vec::new(),
            bits: Vec::new(),
            root: 0,
            steps: Vec::new(),
            lut: Vec::new(),
        };
        let mut stack = vec![Pending {
            pos: 0,
            parent: None,
            last_set: None,
        }];
        while let Some(p) = stack.pop() {
            // Every real node or leaf takes at least 4 bytes, so a valid tree never has
            // more of them than its byte count; overlapping subtrees would.
            if tree.nodes.len() + tree.leaves.len() > bytes.len() {
                return Err(TreeError(
                    "subtrees overlap (more nodes than the file can hold)".into(),
                ));
            }
            let mut r = Reader { bytes, pos: p.pos };
            let at = p.pos;
            let node_type = r.u8("node type")?;
            let col = r.u16("column index")?;
            let child: Child = if col == 0xFFFF {
                tree.leaf(r.f32("leaf value")?)
            } else {
                if usize::from(col) >= n_cols {
                    return Err(TreeError(format!(
                        "node at byte {at} splits on column {col}, but the model has {n_cols} features"
                    )));
                }
                let na_dir = r.u8("NA direction")?;
                let na_vs_rest = na_dir == 1;
                let leftward = na_dir == 2 || na_dir == 4;
                let lmask = node_type & 0x33;
                let equal = node_type & 0x0C;
                let mut last_set = p.last_set;
                let test = if na_vs_rest {
                    let range = if equal != 0 && version != TreeVersion::V0 {
                        p.last_set
                    } else {
                        None
                    };
                    Test::NaVsRest { range }
                } else if equal == 0 {
                    Test::Num(r.f32("split value")?)
                } else {
                    let (bitoff, nbits, nbytes) = if equal == 8 {
                        (0, 32, 4)
                    } else if version == TreeVersion::V2 {
                        let bitoff = i32::from(r.u16("level set offset")?);
                        let nbits = r.i32("level set size")?;
                        if nbits < 0 {
                            return Err(TreeError(format!(
                                "node at byte {at}: level set of {nbits} bits"
                            )));
                        }
                        (bitoff, nbits, ((nbits - 1) >> 3) + 1)
                    } else {
                        let bitoff = i32::from(r.u16("level set offset")?);
                        let nbytes = i32::from(r.u16("level set size")?);
                        (bitoff, nbytes << 3, nbytes)
                    };
                    let set = r.take(nbytes as usize, "level set")?;
                    let start = tree.bits.len() as u32;
                    tree.bits.extend_from_slice(set);
                    last_set = Some((bitoff, nbits));
                    Test::Set {
                        start,
                        bitoff,
                        nbits,
                    }
                };
                let (left_pos, right_pos, left_leaf) = match lmask {
                    0..=3 => {
                        let size = match lmask {
                            0 => u32::from(r.u8("left size")?),
                            1 => u32::from(r.u16("left size")?),
                            2 => r.u24("left size")?,
                            _ => r.i32("left size")? as u32,
                        };
                        (r.pos, r.pos + size as usize, None)
                    }
                    48 => {
                        let v = r.f32("left leaf")?;
                        (r.pos - 4, r.pos, Some(v))
                    }
                    other => {
                        return Err(TreeError(format!(
                            "node at byte {at} has an unknown left-child encoding {other:#x}"
                        )))
                    }
                };
                let idx = tree.nodes.len();
                tree.nodes.push(Node {
                    col: u32::from(col),
                    na_right: !leftward,
                    test,
                    left: 0,
                    right: 0,
                });
                match left_leaf {
                    Some(v) => tree.nodes[idx].left = tree.leaf(v),
                    None => stack.push(Pending {
                        pos: left_pos,
                        parent: Some((idx, false)),
                        last_set,
                    }),
                }
                if node_type & 0x40 != 0 {
                    let mut rr = Reader {
                        bytes,
                        pos: right_pos,
                    };
                    tree.nodes[idx].right = tree.leaf(rr.f32("right leaf")?);
                } else {
                    stack.push(Pending {
                        pos: right_pos,
                        parent: Some((idx, true)),
                        last_set,
                    });
                }
                idx as Child
            };
            match p.parent {
                None => tree.root = child,
                Some((i, false)) => tree.nodes[i].left = child,
                Some((i, true)) => tree.nodes[i].right = child,
            }
        }
        (tree.steps, tree.lut) = tree.plan(version, cat_len)?;
        Ok(tree)
    }

    /// Lays the decoded nodes out as [`Step`]s (see [`Tree::steps`]).
    fn plan(
        &self,
        version: TreeVersion,
        cat_len: &[i32],
    ) -> Result<(Vec<Step>, Vec<u64>), TreeError> {
        let total = self.nodes.len() + self.leaves.len();
        if total > STEP_INDEX as usize {
            return Err(TreeError(format!("{total} nodes are too many for a tree")));
        }
        let mut steps: Vec<Step> = Vec::with_capacity(total);
        let mut lut: Vec<u64> = Vec::new();
        // (child to lay out, the step whose left (false) or right (true) it is)
        let mut stack: Vec<(Child, Option<(usize, bool)>)> = vec![(self.root, None)];
        while let Some((c, parent)) = stack.pop() {
            let at = steps.len();
            match parent {
                Some((p, true)) => steps[p].right = at as u32,
                Some((p, false)) => debug_assert_eq!(p + 1, at, "a left child follows"),
                None => {}
            }
            if c & LEAF != 0 {
                steps.push(Step {
                    value: f64::from(self.leaves[(c & !LEAF) as usize]),
                    meta: STEP_LEAF,
                    right: 0,
                });
                continue;
            }
            let n = &self.nodes[c as usize];
            let domain = cat_len.get(n.col as usize).copied().unwrap_or(-1);
            let numeric_column = version != TreeVersion::V2 || domain < 0;
            let na = if n.na_right { STEP_NA_RIGHT } else { 0 };
            steps.push(match n.test {
                Test::Num(t) if numeric_column => Step {
                    value: f64::from(t),
                    meta: n.col | na,
                    right: 0,
                },
                Test::Set { .. }
                    if version == TreeVersion::V2 && (0..=LUT_MAX_LEVELS).contains(&domain) =>
                {
                    let start = lut.len();
                    lut.resize(start + (domain as usize).div_ceil(64), 0);
                    for level in 0..domain {
                        if self.goes_right(n, f64::from(level), cat_len, version) {
                            lut[start + (level as usize >> 6)] |= 1 << (level & 63);
                        }
                    }
                    Step {
                        value: f64::from_bits((start as u64) << 32 | domain as u64),
                        meta: n.col | na | STEP_CATEGORICAL,
                        right: 0,
                    }
                }
                _ => Step {
                    value: 0.0,
                    meta: c | STEP_GENERAL,
                    right: 0,
                },
            });
            // Popped left first: the left subtree directly follows its parent.
            stack.push((n.right, Some((at, true))));
            stack.push((n.left, Some((at, false))));
        }
        Ok((steps, lut))
    }

    fn leaf(&mut self, v: f32) -> Child {
        self.leaves.push(v);
        (self.leaves.len() - 1) as u32 | LEAF
    }

    /// The tree's prediction for a row. `cat_len[c]` is the domain size of categorical
    /// column `c` and `-1` for numeric columns (used by [`TreeVersion::V2`]).
    #[inline]
    pub(crate) fn score(&self, row: &[f64], cat_len: &[i32], version: TreeVersion) -> f64 {
        let mut i = 0;
        loop {
            let s = self.steps[i];
            let right = if s.meta & STEP_KIND == 0 {
                let d = row[(s.meta & STEP_INDEX) as usize];
                // `|` and `&` rather than `||` and `&&`: no branch on the row's value.
                (d >= s.value) | (d.is_nan() & (s.meta & STEP_NA_RIGHT != 0))
            } else {
                match self.other_step(s, row, cat_len, version) {
                    Ok(right) => right,
                    Err(leaf) => return leaf,
                }
            };
            i = if right { s.right as usize } else { i + 1 };
        }
    }

    /// A step other than a numeric split: `Ok` with whether the row goes right, or
    /// `Err` with the leaf's value.
    #[inline]
    fn other_step(
        &self,
        s: Step,
        row: &[f64],
        cat_len: &[i32],
        version: TreeVersion,
    ) -> Result<bool, f64> {
        Ok(match s.meta & STEP_KIND {
            STEP_LEAF => return Err(s.value),
            STEP_CATEGORICAL => {
                let d = row[(s.meta & STEP_INDEX) as usize];
                let bits = s.value.to_bits();
                let (start, domain) = ((bits >> 32) as usize, bits as u32 as i32);
                let level = d as i32;
                if d.is_nan() || !(0..domain).contains(&level) {
                    s.meta & STEP_NA_RIGHT != 0
                } else {
                    self.lut[start + (level as usize >> 6)] >> (level & 63) & 1 != 0
                }
            }
            _ => {
                let n = &self.nodes[(s.meta & STEP_INDEX) as usize];
                self.goes_right(n, row[n.col as usize], cat_len, version)
            }
        })
    }

    /// Genmodel's test of any split: level sets, NA-versus-rest, and the version rules
    /// for levels outside a set or beyond the column's domain.
    fn goes_right(&self, n: &Node, d: f64, cat_len: &[i32], version: TreeVersion) -> bool {
        let col = n.col as usize;
        let level = d as i32;
        let mut na = d.is_nan();
        if !na && version != TreeVersion::V0 {
            let range = match n.test {
                Test::Set { bitoff, nbits, .. } => Some((bitoff, nbits)),
                Test::NaVsRest { range } => range,
                Test::Num(_) => None,
            };
            if let Some((bitoff, nbits)) = range {
                let b = level.wrapping_sub(bitoff);
                na = !(0..nbits).contains(&b);
            }
            if !na && version == TreeVersion::V2 {
                let len = cat_len[col];
                na = len >= 0 && len <= level;
            }
        }
        if na {
            n.na_right
        } else {
            match n.test {
                Test::Num(t) => d >= f64::from(t),
                Test::Set {
                    start,
                    bitoff,
                    nbits,
                } => {
                    let b = level.wrapping_sub(bitoff);
                    (0..nbits).contains(&b)
                        && self.bits[start as usize + (b >> 3) as usize] & (1 << (b & 7)) != 0
                }
                Test::NaVsRest { .. } => false,
            }
        }
    }
}

/// One record of `trees/tCC_GGG_aux.bin` (`SharedTreeMojoModel.AuxInfo`): the training
/// weights of a split node's children and their node numbers.
#[derive(Debug, Clone, Copy)]
struct Aux {
    weight_l: f32,
    weight_r: f32,
    nid_l: i32,
    nid_r: i32,
}

/// `readAuxInfos`: 40-byte little-endian records `[nid, reserved, weightL, weightR,
/// predL, predR, sqErrL, sqErrR, nidL, nidR]`, keyed by `nid`. Like genmodel, a record
/// whose node is neither the root (0) nor a child named by an earlier record is an error.
fn read_aux(bytes: &[u8]) -> Result<HashMap<i32, Aux>, String> {
    const SIZE: usize = 40;
    if !bytes.len().is_multiple_of(SIZE) {
        return Err(format!(
            "{} bytes is not a whole number of {SIZE}-byte node records",
            bytes.len()
        ));
    }
    let int = |b: &[u8], at: usize| i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let float = |b: &[u8], at: usize| f32::from_bits(int(b, at) as u32);
    let mut known: HashSet<i32> = HashSet::from([0]);
    let mut map = HashMap::new();
    for rec in bytes.chunks_exact(SIZE) {
        let nid = int(rec, 0);
        if !known.contains(&nid) {
            return Err(format!("the record of node {nid} has no parent record"));
        }
        let aux = Aux {
            weight_l: float(rec, 8),
            weight_r: float(rec, 12),
            nid_l: int(rec, 32),
            nid_r: int(rec, 36),
        };
        known.insert(aux.nid_l);
        known.insert(aux.nid_r);
        map.insert(nid, aux);
    }
    Ok(map)
}

impl Tree {
    /// The tree as genmodel's TreeSHAP sees it (`SharedTreeMojoModel.computeTreeGraph`):
    /// node covers from the aux records, splits with the graph's semantics (see
    /// [`crate::shap`]). `cat_len` as for [`Tree::score`].
    pub(crate) fn shap(&self, aux: &[u8], cat_len: &[i32]) -> Result<shap::Tree, String> {
        let aux = read_aux(aux)?;
        let leaf = |value: f32, weight: f32| shap::Node {
            left: shap::LEAF,
            right: shap::LEAF,
            feature: 0,
            na_left: false,
            split: shap::Split::NaVsRest,
            domain: -1,
            weight,
            value,
        };
        if self.root & LEAF != 0 {
            // A single-leaf tree: genmodel never sets its weight.
            let v = self.leaves[(self.root & !LEAF) as usize];
            return shap::Tree::new(vec![leaf(v, 0.0)], Vec::new());
        }
        let mut out: Vec<shap::Node> = Vec::with_capacity(self.nodes.len() * 2 + 1);
        out.push(leaf(0.0, 0.0));
        // (decoded node, its node number, its index in `out`)
        let mut stack = vec![(self.root, 0i32, 0usize)];
        while let Some((c, number, at)) = stack.pop() {
            let n = &self.nodes[c as usize];
            let Some(a) = aux.get(&number) else {
                return Err(format!("no aux record for node number {number}"));
            };
            let domain = cat_len.get(n.col as usize).copied().unwrap_or(-1);
            let (split, domain) = match n.test {
                Test::Num(t) => (shap::Split::AtLeast(t), domain),
                Test::Set {
                    start,
                    bitoff,
                    nbits,
                } => (
                    shap::Split::Set {
                        start,
                        bitoff,
                        nbits,
                    },
                    domain,
                ),
                Test::NaVsRest { .. } => (shap::Split::NaVsRest, -1),
            };
            let mut children = [0u32; 2];
            for (slot, child, weight, nid) in [
                (1, n.right, a.weight_r, a.nid_r),
                (0, n.left, a.weight_l, a.nid_l),
            ] {
                let idx = out.len();
                children[slot] = idx as u32;
                if child & LEAF != 0 {
                    out.push(leaf(self.leaves[(child & !LEAF) as usize], weight));
                } else {
                    let mut node = leaf(0.0, weight);
                    node.left = 0; // replaced when the child is visited
                    out.push(node);
                    stack.push((child, nid, idx));
                }
            }
            let weight = if number == 0 {
                a.weight_l + a.weight_r
            } else {
                out[at].weight
            };
            out[at] = shap::Node {
                left: children[0],
                right: children[1],
                feature: n.col,
                na_left: !n.na_right,
                split,
                domain,
                weight,
                value: f32::NAN,
            };
            if out.len() > 2 * self.nodes.len() + 1 {
                return Err("the tree graph is larger than its nodes".into());
            }
        }
        shap::Tree::new(out, self.bits.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_tree(v: f32) -> Vec<u8> {
        let mut b = vec![0u8, 0xFF, 0xFF];
        b.extend_from_slice(&v.to_le_bytes());
        b
    }

    /// x0 < 1.5 ? 10 : (x1 in {1,3} ? 30 : 20), with NA going right at the root.
    fn small_tree() -> Vec<u8> {
        let mut b = Vec::new();
        // root: numeric split, left leaf (lmask 48), right is a node
        b.push(0x30);
        b.extend_from_slice(&0u16.to_le_bytes());
        b.push(3); // NA right
        b.extend_from_slice(&1.5f32.to_le_bytes());
        b.extend_from_slice(&10f32.to_le_bytes());
        // right node: inline level set (equal 8), both children leaves
        b.push(0x30 | 0x08 | 0x40);
        b.extend_from_slice(&1u16.to_le_bytes());
        b.push(2); // NA left
        b.extend_from_slice(&[0b1010, 0, 0, 0]);
        b.extend_from_slice(&20f32.to_le_bytes());
        b.extend_from_slice(&30f32.to_le_bytes());
        b
    }

    #[test]
    fn decodes_and_scores() {
        let t = Tree::decode(&small_tree(), TreeVersion::V2, 2, &[-1, 4]).unwrap();
        let cats = [-1, 4];
        let cases = [
            ("left leaf", [1.0, 0.0], 10.0),
            ("threshold goes right", [1.5, 1.0], 30.0),
            ("level not in set", [2.0, 2.0], 20.0),
            ("level in set", [2.0, 3.0], 30.0),
            (
                "NA at root goes right, NA level goes left",
                [f64::NAN, f64::NAN],
                20.0,
            ),
            ("level beyond the domain is NA", [2.0, 5.0], 20.0),
        ];
        for (name, row, want) in cases {
            assert_eq!(t.score(&row, &cats, TreeVersion::V2), want, "{name}");
        }
        let single = Tree::decode(&leaf_tree(0.25), TreeVersion::V2, 1, &[-1]).unwrap();
        assert_eq!(single.score(&[0.0], &[-1], TreeVersion::V2), 0.25);
    }

    #[test]
    fn a_threshold_on_a_categorical_column_keeps_the_domain_rule() {
        // The root's threshold split (go right at >= 1.5, NA right) is on column 0. As a
        // categorical column of one level (V2), level 1 is beyond the domain and follows
        // the NA direction (right), whereas as a number 1.0 goes left.
        let cases = [
            ("categorical, in the domain", [1, 4], [0.0, 3.0], 10.0),
            ("categorical, beyond the domain", [1, 4], [1.0, 3.0], 30.0),
            ("numeric, same value", [-1, 4], [1.0, 3.0], 10.0),
        ];
        for (name, cats, row, want) in cases {
            let t = Tree::decode(&small_tree(), TreeVersion::V2, 2, &cats).unwrap();
            assert_eq!(t.score(&row, &cats, TreeVersion::V2), want, "{name}");
        }
    }

    #[test]
    fn level_sets_and_thresholds_on_categorical_columns() {
        // Column 0 numeric, 1 and 2 categorical: `small_tree`'s level set on column 1 is
        // a bitmap step; a threshold on categorical column 2 (NA left) the general one.
        let cats = [-1, 4, 3];
        let mut threshold_on_levels = vec![0x30 | 0x40];
        threshold_on_levels.extend_from_slice(&2u16.to_le_bytes());
        threshold_on_levels.push(2);
        for v in [1.5f32, 100.0, 200.0] {
            threshold_on_levels.extend_from_slice(&v.to_le_bytes());
        }
        let set = Tree::decode(&small_tree(), TreeVersion::V2, 3, &cats).unwrap();
        let threshold = Tree::decode(&threshold_on_levels, TreeVersion::V2, 3, &cats).unwrap();
        let nan = f64::NAN;
        let cases = [
            ("level in the set", &set, [2.0, 3.0, 0.0], 30.0),
            ("level not in the set", &set, [2.0, 2.0, 0.0], 20.0),
            (
                "fraction truncates to a level in the set",
                &set,
                [2.0, 3.7, 0.0],
                30.0,
            ),
            (
                "level beyond the domain: NA (left)",
                &set,
                [2.0, 4.0, 0.0],
                20.0,
            ),
            ("negative level: NA (left)", &set, [2.0, -1.0, 0.0], 20.0),
            ("missing level: NA (left)", &set, [2.0, nan, 0.0], 20.0),
            ("threshold, below", &threshold, [0.0, 0.0, 1.0], 100.0),
            ("threshold, at or above", &threshold, [0.0, 0.0, 2.0], 200.0),
            (
                "threshold, beyond the domain: NA (left)",
                &threshold,
                [0.0, 0.0, 3.0],
                100.0,
            ),
            (
                "threshold, missing: NA (left)",
                &threshold,
                [0.0, 0.0, nan],
                100.0,
            ),
        ];
        for (name, tree, row, want) in cases {
            assert_eq!(tree.score(&row, &cats, TreeVersion::V2), want, "{name}");
        }
    }

    /// A level-set split in the 1.00/1.10 layout (`bitoff u16`, `nbytes u16`), levels
    /// 2..10 covered, level 3 in the set; both children leaves.
    fn old_layout_set_tree() -> Vec<u8> {
        let mut b = vec![0x30 | 0x0C | 0x40];
        b.extend_from_slice(&0u16.to_le_bytes());
        b.push(3); // NA right
        b.extend_from_slice(&2u16.to_le_bytes()); // bitoff
        b.extend_from_slice(&1u16.to_le_bytes()); // one byte of bits
        b.push(0b0000_0010); // level 2 + 1 = 3
        b.extend_from_slice(&1f32.to_le_bytes());
        b.extend_from_slice(&2f32.to_le_bytes());
        b
    }

    #[test]
    fn old_versions_treat_levels_outside_the_set_differently() {
        let bytes = old_layout_set_tree();
        let cats = [8];
        let cases = [
            // (version, level, expected leaf)
            (TreeVersion::V0, 3.0, 2.0),
            (TreeVersion::V0, 4.0, 1.0),
            (TreeVersion::V0, 1.0, 1.0), // below the set: left in 1.00
            (TreeVersion::V1, 1.0, 2.0), // ... but the NA direction (right) from 1.10 on
            (TreeVersion::V1, 3.0, 2.0),
            (TreeVersion::V0, f64::NAN, 2.0),
        ];
        for (version, level, want) in cases {
            let t = Tree::decode(&bytes, version, 1, &[8]).unwrap();
            assert_eq!(
                t.score(&[level], &cats, version),
                want,
                "{version:?} level {level}"
            );
        }
    }

    #[test]
    fn rejects_malformed_trees() {
        let mut bad_col = small_tree();
        bad_col[1] = 9;
        let mut bad_mask = small_tree();
        bad_mask[0] = 0x10;
        let cases = [
            ("truncated", small_tree()[..10].to_vec(), "past the end"),
            ("column out of range", bad_col, "splits on column 9"),
            ("unknown left encoding", bad_mask, "left-child encoding"),
        ];
        for (name, bytes, needle) in cases {
            let e = Tree::decode(&bytes, TreeVersion::V2, 2, &[-1, 4]).expect_err(name);
            assert!(e.0.contains(needle), "{name}: {}", e.0);
        }
    }

    #[test]
    fn overlapping_subtrees_are_bounded() {
        // A node whose left size is 0 makes both children the same bytes; chained, that
        // would blow up exponentially.
        let mut b = Vec::new();
        for _ in 0..40 {
            b.push(0x00); // lmask 0: one size byte, right is a node
            b.extend_from_slice(&0u16.to_le_bytes());
            b.push(3);
            b.extend_from_slice(&0f32.to_le_bytes());
            b.push(0); // left size 0
        }
        b.extend_from_slice(&leaf_tree(1.0));
        let e = Tree::decode(&b, TreeVersion::V2, 1, &[-1]).expect_err("overlap");
        assert!(e.0.contains("overlap"), "{}", e.0);
    }
}
