//! Isolation Forest (`IsolationForestMojoModel`) and Extended Isolation Forest
//! (`ExtendedIsolationForestMojoModel`).
//!
//! Isolation Forest trees are ordinary compressed trees whose leaves hold path lengths;
//! the outputs are the normalized score `(max_path_length - sum) / (max - min)` and the
//! mean path length (with `output_anomaly_flag`, a 0/1 flag against
//! `default_threshold` first). Extended Isolation Forest trees are a different format
//! (`trees/tNN.bin`): records `[node number i32][type u8]`, a split node `'N'` holding a
//! normal vector and an intercept point (f64 each, one per feature), a leaf `'L'` its row
//! count; children of node `i` are `2i+1` and `2i+2`, looked up forward in the file as
//! genmodel does. The anomaly score is `2^(-mean path / c(sample_size))`.

use std::collections::HashMap;

use crate::keys::{Keys, LoadError, LoadResult};
use crate::model::{Common, Model};
use crate::sharedtree::Forest;

/// Isolation Forest.
#[derive(Debug)]
pub(crate) struct IsolationForest {
    forest: Forest,
    min_path_length: i64,
    max_path_length: i64,
    output_anomaly_flag: bool,
    default_threshold: f64,
}

impl IsolationForest {
    pub(crate) fn read(keys: &Keys) -> LoadResult<IsolationForest> {
        let common = Common::read(keys)?;
        let forest = Forest::read(keys, &common)?;
        Ok(IsolationForest {
            forest,
            min_path_length: keys.opt_i64("min_path_length")?.unwrap_or(0),
            max_path_length: keys.opt_i64("max_path_length")?.unwrap_or(0),
            output_anomaly_flag: keys.bool_or("output_anomaly_flag", false)?,
            default_threshold: common.default_threshold,
        })
    }

    pub(crate) fn n_outputs(&self) -> usize {
        if self.output_anomaly_flag {
            3
        } else {
            2
        }
    }
}

impl Model for IsolationForest {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        self.forest.score_all(row, 1, preds);
        let groups = self.forest.groups;
        let mean_length = if groups >= 1 && preds.len() > 1 {
            preds[0] / groups as f64
        } else {
            0.0
        };
        let score = if self.max_path_length > self.min_path_length {
            (self.max_path_length as f64 - preds[0])
                / (self.max_path_length - self.min_path_length) as f64
        } else {
            1.0
        };
        if self.output_anomaly_flag {
            preds[0] = if score > self.default_threshold {
                1.0
            } else {
                0.0
            };
            preds[1] = score;
            preds[2] = mean_length;
        } else {
            preds[0] = score;
            preds[1] = mean_length;
        }
        true
    }
}

/// A decoded extended isolation tree, its records in file order.
#[derive(Debug)]
struct EiTree {
    nodes: Vec<EiNode>,
    root: Next,
}

/// Where genmodel's forward scan for a node number ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// The record at this index.
    Node(usize),
    /// The end of the file: the tree's path length is -1.
    End,
    /// An unreadable record (genmodel throws): the row cannot be scored. Files are
    /// zero-padded after their last record, so this is only reached by a broken tree.
    Fail,
}

#[derive(Debug)]
enum EiNode {
    Split {
        normal: Vec<f64>,
        point: Vec<f64>,
        left: Next,
        right: Next,
    },
    Leaf {
        rows: i32,
    },
}

/// `averagePathLengthOfUnsuccessfulSearch`, with genmodel's harmonic estimate.
fn avg_path(n: i64) -> f64 {
    if n < 2 {
        return 0.0;
    }
    if n == 2 {
        return 1.0;
    }
    let m = n - 1;
    let harmonic = if m <= 0 {
        0.0
    } else {
        (m as f64).ln() + 0.5772156649
    };
    2.0 * harmonic - (2.0 * (n as f64 - 1.0)) / n as f64
}

impl EiTree {
    fn decode(bytes: &[u8], n_features: usize) -> Result<EiTree, String> {
        let take = |pos: usize, n: usize| -> Result<&[u8], String> {
            bytes
                .get(pos..pos.checked_add(n).ok_or("overflow")?)
                .ok_or_else(|| {
                    format!(
                        "record at byte {pos} runs past the end ({} bytes)",
                        bytes.len()
                    )
                })
        };
        let size = i32::from_le_bytes(take(0, 4)?.try_into().unwrap_or_default());
        if size < 0 || size as usize != n_features {
            return Err(format!(
                "branching arrays have {size} entries but the model has {n_features} features"
            ));
        }
        let size = size as usize;
        let f64s = |pos: usize| -> Result<Vec<f64>, String> {
            let b = take(pos, size * 8)?;
            Ok(b.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect())
        };
        let mut numbers = Vec::new();
        let mut nodes = Vec::new();
        let mut pos = 4;
        // Records are read up to the first one genmodel could not read (an unknown type
        // such as the zero padding, or a truncated record); a scan past it fails.
        let mut broken_tail = false;
        while pos < bytes.len() {
            let record = (|| -> Result<(i32, EiNode, usize), String> {
                let number = i32::from_le_bytes(take(pos, 4)?.try_into().unwrap_or_default());
                let kind = take(pos + 4, 1)?[0];
                let body = pos + 5;
                match kind {
                    b'N' => {
                        let normal = f64s(body)?;
                        let point = f64s(body + size * 8)?;
                        let node = EiNode::Split {
                            normal,
                            point,
                            left: Next::End,
                            right: Next::End,
                        };
                        Ok((number, node, body + 2 * size * 8))
                    }
                    b'L' => {
                        let rows =
                            i32::from_le_bytes(take(body, 4)?.try_into().unwrap_or_default());
                        Ok((number, EiNode::Leaf { rows }, body + 4))
                    }
                    other => Err(format!("unknown node type {other}")),
                }
            })();
            match record {
                Ok((number, node, next)) => {
                    numbers.push(number);
                    nodes.push(node);
                    pos = next;
                }
                Err(_) => {
                    broken_tail = true;
                    break;
                }
            }
        }
        // Record positions of each node number, in file order.
        let mut at: HashMap<i32, Vec<usize>> = HashMap::new();
        for (i, &n) in numbers.iter().enumerate() {
            at.entry(n).or_default().push(i);
        }
        let first_after = |number: i32, after: Option<usize>| -> Next {
            let found = at.get(&number).and_then(|list| match after {
                None => list.first().copied(),
                Some(a) => list.iter().copied().find(|&i| i > a),
            });
            match found {
                Some(i) => Next::Node(i),
                None if broken_tail => Next::Fail,
                None => Next::End,
            }
        };
        let root = first_after(0, None);
        for (i, node) in nodes.iter_mut().enumerate() {
            if let EiNode::Split { left, right, .. } = node {
                let n = numbers[i];
                *left = first_after(n.wrapping_mul(2).wrapping_add(1), Some(i));
                *right = first_after(n.wrapping_mul(2).wrapping_add(2), Some(i));
            }
        }
        Ok(EiTree { nodes, root })
    }

    /// The tree's path length for a row; `None` where genmodel throws.
    fn path_length(&self, row: &[f64]) -> Option<f64> {
        let mut height = 0i32;
        let mut at = self.root;
        loop {
            let i = match at {
                Next::Node(i) => i,
                Next::End => return Some(-1.0),
                Next::Fail => return None,
            };
            match &self.nodes[i] {
                EiNode::Split {
                    normal,
                    point,
                    left,
                    right,
                } => {
                    let mut mul = 0.0;
                    for ((x, p), n) in row.iter().zip(point).zip(normal) {
                        mul += (x - p) * n;
                    }
                    height += 1;
                    at = if mul <= 0.0 { *left } else { *right };
                }
                EiNode::Leaf { rows } => {
                    return Some(f64::from(height) + avg_path(i64::from(*rows)));
                }
            }
        }
    }
}

/// Extended Isolation Forest.
#[derive(Debug)]
pub(crate) struct ExtendedIsolationForest {
    trees: Vec<EiTree>,
    sample_size: i64,
}

impl ExtendedIsolationForest {
    pub(crate) fn read(keys: &Keys) -> LoadResult<ExtendedIsolationForest> {
        let common = Common::read(keys)?;
        let ntrees = keys.usize_or("ntrees", 0)?;
        let sample_size = keys.opt_i64("sample_size")?.unwrap_or(0);
        let mut trees = Vec::with_capacity(ntrees.min(100_000));
        for i in 0..ntrees {
            let name = format!("trees/t{i:02}.bin");
            let file = format!("{}{name}", keys.mojo.prefix);
            let Some(bytes) = keys.blob(&name) else {
                return Err(LoadError::Invalid {
                    file,
                    detail: "is missing".into(),
                });
            };
            let tree = EiTree::decode(bytes, common.n_features)
                .map_err(|detail| LoadError::Invalid { file, detail })?;
            trees.push(tree);
        }
        if trees.is_empty() {
            return keys.invalid("ntrees is 0");
        }
        Ok(ExtendedIsolationForest { trees, sample_size })
    }
}

impl Model for ExtendedIsolationForest {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        let mut path = 0.0;
        for t in &self.trees {
            match t.path_length(row) {
                Some(p) => path += p,
                None => return false,
            }
        }
        path /= self.trees.len() as f64;
        preds[0] = 2f64.powf(-(path / avg_path(self.sample_size)));
        preds[1] = path;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(out: &mut Vec<u8>, number: i32, split: Option<(&[f64], &[f64])>, rows: i32) {
        out.extend_from_slice(&number.to_le_bytes());
        match split {
            Some((n, p)) => {
                out.push(b'N');
                for v in n.iter().chain(p) {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            None => {
                out.push(b'L');
                out.extend_from_slice(&rows.to_le_bytes());
            }
        }
    }

    #[test]
    fn extended_tree_paths() {
        let mut b = 1i32.to_le_bytes().to_vec();
        record(&mut b, 0, Some((&[1.0], &[0.5])), 0);
        record(&mut b, 1, None, 1);
        record(&mut b, 2, None, 3);
        let t = EiTree::decode(&b, 1).unwrap();
        let cases = [
            ("left (x - p) * n <= 0", 0.5, 1.0 + avg_path(1)),
            ("right", 0.7, 1.0 + avg_path(3)),
            ("NaN goes right", f64::NAN, 1.0 + avg_path(3)),
        ];
        for (name, x, want) in cases {
            assert_eq!(t.path_length(&[x]), Some(want), "{name}");
        }
        // A child written before its parent is never found: genmodel returns -1.
        let mut b = 1i32.to_le_bytes().to_vec();
        record(&mut b, 1, None, 1);
        record(&mut b, 0, Some((&[1.0], &[0.5])), 0);
        record(&mut b, 2, None, 3);
        let t = EiTree::decode(&b, 1).unwrap();
        assert_eq!(t.path_length(&[0.0]), Some(-1.0));
        assert!(EiTree::decode(&b, 2).is_err());
        // Zero padding after the records is never read; a scan into it fails.
        let mut padded = b.clone();
        padded.extend_from_slice(&[0; 64]);
        let t = EiTree::decode(&padded, 1).unwrap();
        assert_eq!(t.path_length(&[1.0]), Some(1.0 + avg_path(3)));
        assert_eq!(t.path_length(&[0.0]), None);
    }
}
