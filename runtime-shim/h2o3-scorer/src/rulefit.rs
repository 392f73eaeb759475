//! RuleFit (`RuleFitMojoModel`): rules taken from trees, fed with (or instead of) the
//! original predictors into a GLM, the MOJO's one sub-model (`linear_model`).
//!
//! The rules are grouped by rule length (`depth`) and tree (`ntrees`): group `M{i}T{j}`
//! holds the rules (leaf paths) of tree `j` of the forest grown with depth `i`. A rule is
//! a conjunction of conditions on the original row: numeric `x < t` or `x >= t`,
//! categorical `level in {…}`, and for either "or missing" (`nas_included`). The GLM sees
//! each group as one categorical column whose levels are the rules' names (`M0T1N4`):
//! genmodel sets it to the level of the LAST rule of the group the row satisfies, or NaN
//! when it satisfies none (the GLM's missing-value handling then applies). A multinomial
//! RuleFit has one such column per group and class (`M0T1C2`, the rules whose name ends
//! with the class label). The model type decides the GLM's input: the rule columns
//! (`rules`), the original predictors (`linear`, GLM columns `linear.<name>`), or both
//! (`rules_and_linear`); `linear_names_*` give that input in order, and genmodel places
//! each value at the GLM column of that name. The GLM's prediction is the model's.
//!
//! Everything genmodel looks up by name per row (rule levels, GLM columns) is resolved
//! at load; what genmodel would only fail on while scoring (a rule name it cannot find
//! in the GLM, say) is kept as "fails when used", so such a row gives no prediction.

use crate::keys::{Keys, LoadResult};
use crate::model::{Common, Model};
use crate::{build, Render};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelType {
    Linear,
    RulesAndLinear,
    Rules,
}

#[derive(Debug, Clone)]
enum Test {
    /// `x < t`
    Less(f64),
    /// `x >= t`
    GreaterOrEqual(f64),
    /// A numeric condition with the `In` operator: never true.
    Never,
    /// Level index in the set (the operator is not consulted).
    In(Vec<i32>),
}

/// `MojoCondition`.
#[derive(Debug, Clone)]
struct Condition {
    feature: usize,
    nas_included: bool,
    test: Test,
}

impl Condition {
    fn holds(&self, row: &[f64]) -> bool {
        let v = row[self.feature];
        if v.is_nan() {
            return self.nas_included;
        }
        match &self.test {
            Test::Less(t) => v < *t,
            Test::GreaterOrEqual(t) => v >= *t,
            Test::Never => false,
            Test::In(levels) => levels.iter().any(|&l| f64::from(l) == v),
        }
    }
}

/// A rule of a group, with the GLM level it selects (`getValueByVarName`, resolved for
/// the group's class): `None` where genmodel throws when the rule holds.
#[derive(Debug, Clone)]
struct Rule {
    conditions: Vec<Condition>,
    level: Option<i32>,
}

/// The rules of one GLM column (a group, or a group and class).
#[derive(Debug)]
struct Group {
    rules: Vec<Rule>,
    /// The GLM raw-row position the group's value goes to.
    at: usize,
}

#[derive(Debug)]
pub(crate) struct RuleFit {
    model_type: ModelType,
    groups: Vec<Group>,
    /// GLM raw-row position of each of the original predictors (`rules_and_linear` and
    /// `linear`), in row order.
    linear_at: Vec<usize>,
    linear: Box<dyn crate::model::Model>,
    linear_features: usize,
}

/// `getValueByVarName`: the index of `var_name` in the domain of the GLM column
/// `<prefix before the first N>` (+ `C<class>`), `None` where genmodel throws (no `N`, no
/// such column, a column without a domain). `-1` (not a level) is a value genmodel uses.
fn rule_level(
    var_name: &str,
    class: Option<usize>,
    glm_columns: &[String],
    glm_domains: &[Option<Vec<String>>],
) -> Option<i32> {
    let n = var_name.find('N')?;
    let mut column = var_name[..n].to_string();
    if let Some(k) = class {
        column.push_str(&format!("C{k}"));
    }
    let i = glm_columns.iter().position(|c| *c == column)?;
    let domain = glm_domains.get(i)?.as_ref()?;
    Some(
        domain
            .iter()
            .position(|l| l == var_name)
            .map_or(-1, |p| p as i32),
    )
}

impl RuleFit {
    pub(crate) fn read(keys: &Keys) -> LoadResult<RuleFit> {
        let common = Common::read(keys)?;
        let mojo = keys.mojo;
        let linear_key = keys.req_str("linear_model")?;
        let Some(glm) = mojo
            .submodels
            .iter()
            .find(|(k, _)| k == linear_key)
            .map(|(_, m)| m)
        else {
            return keys.invalid(format!(
                "linear model {linear_key:?} is not one of the sub-models"
            ));
        };
        let built = build(glm, keys.files, false)?;
        let fits = match (&built.render, mojo.category()) {
            (Render::Classes(d), "Binomial" | "Multinomial") => d.len() == common.n_classes,
            (Render::Values(1), "Regression") => true,
            _ => false,
        };
        if !fits {
            return keys.invalid(format!(
                "the linear model {linear_key:?} ({} / {}) does not predict what a {} RuleFit needs",
                glm.algo(),
                glm.category(),
                mojo.category()
            ));
        }
        let model_type = match keys.opt_i64("model_type")? {
            Some(0) => ModelType::Linear,
            Some(1) => ModelType::RulesAndLinear,
            Some(_) => ModelType::Rules,
            None => return keys.invalid("key `model_type` is missing"),
        };
        let depth = keys.req_usize("depth")?;
        let ntrees = keys.req_usize("ntrees")?;
        let glm_columns = &glm.ini.columns;
        let glm_features = built.n_features;

        // The GLM's input, `test` in genmodel: rule columns, then the row.
        let classes: Option<Vec<String>> = mojo
            .response_domain()
            .filter(|d| d.len() > 2)
            .map(<[String]>::to_vec);
        let k = classes.as_ref().map_or(1, Vec::len);
        let n_rule_columns = if model_type == ModelType::Linear {
            0
        } else {
            depth
                .checked_mul(ntrees)
                .and_then(|n| n.checked_mul(k))
                .filter(|&n| n <= 1 << 20)
                .ok_or_else(|| crate::keys::LoadError::Invalid {
                    file: keys.ini_name(),
                    detail: format!("depth = {depth} × ntrees = {ntrees} is too many rule groups"),
                })?
        };
        let test_len = match model_type {
            ModelType::Linear => common.n_features,
            ModelType::RulesAndLinear => n_rule_columns + common.n_features,
            ModelType::Rules => n_rule_columns,
        };
        // map(): test[i] goes to the GLM column named linear_names_i.
        let names_len = keys.req_usize("linear_names_len")?;
        if names_len < glm_features || test_len < glm_features {
            return keys.invalid(format!(
                "the linear model takes {glm_features} features, but RuleFit names {names_len} \
                 and makes {test_len}"
            ));
        }
        let mut position = Vec::with_capacity(glm_features);
        for i in 0..glm_features {
            let name = keys.req_str(&format!("linear_names_{i}"))?;
            match glm_columns.iter().position(|c| c == name) {
                Some(at) if at < glm_features => position.push(at),
                _ => {
                    return keys.invalid(format!(
                        "linear_names_{i} = {name:?} is not a feature of the linear model"
                    ))
                }
            }
        }
        // Only the first glm_features values of `test` are used.
        let used = |t: usize| (t < glm_features).then(|| position[t]);

        let mut groups = Vec::new();
        if model_type != ModelType::Linear {
            for i in 0..depth {
                for j in 0..ntrees {
                    let n = keys.req_usize(&format!("num_rules_M{i}T{j}"))?;
                    let mut rules = Vec::with_capacity(n.min(1 << 16));
                    for r in 0..n {
                        rules.push(read_rule(keys, &format!("{i}_{j}_{r}"), common.n_features)?);
                    }
                    match &classes {
                        None => {
                            let t = i * ntrees + j;
                            let resolved = rules
                                .into_iter()
                                .map(|(rule, name)| Rule {
                                    level: rule_level(&name, None, glm_columns, &glm.domains),
                                    ..rule
                                })
                                .collect();
                            if let Some(at) = used(t) {
                                groups.push(Group {
                                    rules: resolved,
                                    at,
                                });
                            }
                        }
                        Some(classes) => {
                            for (c, class) in classes.iter().enumerate() {
                                let t = i * ntrees * k + j * k + c;
                                let of_class: Vec<Rule> = rules
                                    .iter()
                                    .filter(|(_, name)| name.ends_with(class.as_str()))
                                    .map(|(rule, name)| Rule {
                                        level: rule_level(name, Some(c), glm_columns, &glm.domains),
                                        ..rule.clone()
                                    })
                                    .collect();
                                if of_class.is_empty() {
                                    // genmodel's classRules[k] is null: every row throws.
                                    return keys.invalid(format!(
                                        "rule group M{i}T{j} has no rule for class {class:?}"
                                    ));
                                }
                                if let Some(at) = used(t) {
                                    groups.push(Group {
                                        rules: of_class,
                                        at,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
        let first_linear = test_len
            - if model_type == ModelType::Rules {
                0
            } else {
                common.n_features
            };
        let linear_at = match model_type {
            ModelType::Rules => Vec::new(),
            _ => (0..common.n_features)
                .map_while(|c| used(first_linear + c))
                .collect(),
        };
        Ok(RuleFit {
            model_type,
            groups,
            linear_at,
            linear: built.model,
            linear_features: glm_features,
        })
    }
}

/// One rule (`readRule`) and its name (`var_name`); `n_features` bounds its columns.
fn read_rule(keys: &Keys, id: &str, n_features: usize) -> LoadResult<(Rule, String)> {
    let n = keys.req_usize(&format!("num_conditions_rule_id_{id}"))?;
    let mut conditions = Vec::with_capacity(n.min(1 << 10));
    for c in 0..n {
        let cid = format!("{c}_{id}");
        let feature = keys.req_usize(&format!("feature_index_{cid}"))?;
        if feature >= n_features {
            return keys.invalid(format!(
                "feature_index_{cid} = {feature}, but the model has {n_features} features"
            ));
        }
        let operator = keys
            .opt_i64(&format!("operator_{cid}"))?
            .ok_or_else(|| missing(keys, &format!("operator_{cid}")))?;
        let test = match keys.opt_i64(&format!("type_{cid}"))? {
            Some(0) => {
                let names = keys.req_usize(&format!("language_cat_treshold_length_{cid}"))?;
                for l in 0..names.min(1 << 16) {
                    keys.req_str(&format!("language_cat_treshold_{l}_{cid}"))?;
                }
                let len = keys.req_usize(&format!("cat_treshold_length_{cid}"))?;
                let mut levels = Vec::with_capacity(len.min(1 << 16));
                for l in 0..len {
                    let key = format!("cat_treshold_length_{l}_{cid}");
                    let v = keys.opt_i64(&key)?.ok_or_else(|| missing(keys, &key))?;
                    levels.push(
                        i32::try_from(v).map_err(|_| crate::keys::LoadError::Invalid {
                            file: keys.ini_name(),
                            detail: format!("`{key}` = {v} is not a level index"),
                        })?,
                    );
                }
                Test::In(levels)
            }
            Some(_) => {
                let t = keys.req_f64(&format!("num_treshold{cid}"))?;
                match operator {
                    0 => Test::Less(t),
                    1 => Test::GreaterOrEqual(t),
                    _ => Test::Never,
                }
            }
            None => return keys.invalid(format!("key `type_{cid}` is missing")),
        };
        let nas_key = format!("nas_included_{cid}");
        let nas_included = match keys.raw(&nas_key) {
            Some("true") => true,
            Some("false") => false,
            other => return keys.invalid(format!("`{nas_key}` = {other:?} is not true or false")),
        };
        conditions.push(Condition {
            feature,
            nas_included,
            test,
        });
    }
    // Read (and unboxed) by genmodel, unused for scoring.
    keys.req_f64(&format!("prediction_value_rule_id_{id}"))?;
    keys.req_f64(&format!("coefficient_rule_id_{id}"))?;
    let name = keys.req_str(&format!("var_name_rule_id_{id}"))?.to_string();
    Ok((
        Rule {
            conditions,
            level: None,
        },
        name,
    ))
}

fn missing(keys: &Keys, key: &str) -> crate::keys::LoadError {
    crate::keys::LoadError::Invalid {
        file: keys.ini_name(),
        detail: format!("key `{key}` is missing"),
    }
}

impl Model for RuleFit {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        let mut input = vec![0.0; self.linear_features];
        for g in &self.groups {
            // MojoRuleEnsemble.transform + decode: the last rule that holds wins.
            let mut level = -1;
            for rule in &g.rules {
                if rule.conditions.iter().all(|c| c.holds(row)) {
                    match rule.level {
                        Some(l) => level = l,
                        None => return false,
                    }
                }
            }
            input[g.at] = if level >= 0 {
                f64::from(level)
            } else {
                f64::NAN
            };
        }
        if self.model_type != ModelType::Rules {
            for (v, &at) in row.iter().zip(&self.linear_at) {
                input[at] = *v;
            }
        }
        self.linear.score0(&mut input, 0.0, preds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_follow_mojo_condition() {
        let num = |test, nas_included| Condition {
            feature: 0,
            nas_included,
            test,
        };
        let cases = [
            ("less", num(Test::Less(1.5), false), 1.0, true),
            (
                "less, at the threshold",
                num(Test::Less(1.5), false),
                1.5,
                false,
            ),
            ("at least", num(Test::GreaterOrEqual(1.5), false), 1.5, true),
            (
                "missing, NAs included",
                num(Test::Less(1.5), true),
                f64::NAN,
                true,
            ),
            (
                "missing, NAs excluded",
                num(Test::GreaterOrEqual(1.5), false),
                f64::NAN,
                false,
            ),
            ("numeric In", num(Test::Never, false), 1.0, false),
            (
                "level in the set",
                num(Test::In(vec![0, 3]), false),
                3.0,
                true,
            ),
            (
                "level not in the set",
                num(Test::In(vec![0, 3]), false),
                2.0,
                false,
            ),
        ];
        for (name, c, v, want) in cases {
            assert_eq!(c.holds(&[v]), want, "{name}");
        }
    }

    #[test]
    fn rule_names_resolve_like_get_value_by_var_name() {
        let columns = ["M0T0", "M0T1C2", "linear.x"].map(String::from);
        let domains = vec![
            Some(vec!["M0T0N3".to_string(), "M0T0N4".to_string()]),
            Some(vec!["M0T1N5_c".to_string()]),
            None,
        ];
        let cases = [
            ("binomial rule", "M0T0N4", None, Some(1)),
            ("rule not among the levels", "M0T0N9", None, Some(-1)),
            ("multinomial rule", "M0T1N5_c", Some(2), Some(0)),
            ("no N", "M0T0", None, None),
            ("no such column", "M9T9N1", None, None),
            ("column without a domain", "linear.xN1", None, None),
        ];
        for (name, var, class, want) in cases {
            assert_eq!(rule_level(var, class, &columns, &domains), want, "{name}");
        }
    }
}
