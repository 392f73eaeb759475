//! The runtime's endpoint security and metrics in the example: secrets come from a
//! Secret of the example (never a literal value), every `secretKeyRef`/`configMapKeyRef`
//! names an object and key the example defines, a passphrase hash in it is one the
//! runtime reads (parsed by `runtime_shim::auth`'s own code), and a runtime that serves
//! metrics on `METRICS_PORT` declares that port and is announced to Prometheus by the
//! pod's `prometheus.io/*` annotations.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::images::Role;
use crate::kube::{containers, role_of, str_at, Document, Expected, PodRef};

/// Variables that hold secrets: only from a Secret.
pub const SECRET_ENV: [&str; 2] = ["SCORING_PASSPHRASE", "SCORING_PASSPHRASE_HASH"];

/// The data of the example's Secrets and ConfigMaps: (kind, name) → key → value.
fn data_objects(docs: &[Document]) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for d in docs {
        let kind = str_at(&d.value, "/kind").unwrap_or("");
        if kind != "Secret" && kind != "ConfigMap" {
            continue;
        }
        let name = str_at(&d.value, "/metadata/name").unwrap_or("").to_string();
        let mut data = BTreeMap::new();
        for key in ["data", "stringData"] {
            if let Some(m) = d.value.get(key).and_then(Value::as_object) {
                for (k, v) in m {
                    let text = v.as_str().unwrap_or_default().to_string();
                    // A Secret's `data` is base64; only `stringData` values are checked.
                    let text = if kind == "Secret" && key == "data" {
                        String::new()
                    } else {
                        text
                    };
                    data.insert(k.clone(), text);
                }
            }
        }
        out.insert((kind.to_string(), name), data);
    }
    out
}

/// The findings on the runtime containers' security and metrics settings.
pub fn check(expected: &Expected<'_>, docs: &[Document], pods: &[PodRef<'_>], f: &mut Vec<String>) {
    let objects = data_objects(docs);
    for pod in pods {
        for c in containers(pod.spec, "containers") {
            if role_of(expected, c) != Some(Role::Runtime) {
                continue;
            }
            let at = format!(
                "{} container {}",
                pod.origin,
                str_at(c, "/name").unwrap_or("?")
            );
            let mut literal: BTreeMap<&str, &str> = BTreeMap::new();
            for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                let Some(name) = str_at(e, "/name") else {
                    continue;
                };
                if let Some(v) = str_at(e, "/value") {
                    literal.insert(name, v);
                }
                let secret = e.pointer("/valueFrom/secretKeyRef");
                let config = e.pointer("/valueFrom/configMapKeyRef");
                if SECRET_ENV.contains(&name) && secret.is_none() {
                    f.push(format!(
                        "{at}: {name} must come from a Secret (valueFrom.secretKeyRef), not {}",
                        if e.get("value").is_some() {
                            "a literal value"
                        } else {
                            "elsewhere"
                        }
                    ));
                }
                for (kind, r) in [("Secret", secret), ("ConfigMap", config)] {
                    let Some(r) = r else { continue };
                    let obj = str_at(r, "/name").unwrap_or("");
                    let key = str_at(r, "/key").unwrap_or("");
                    let optional = r.get("optional").and_then(Value::as_bool) == Some(true);
                    match objects.get(&(kind.to_string(), obj.to_string())) {
                        None if !optional => f.push(format!(
                            "{at}: {name} reads {kind} {obj}, which the example does not define"
                        )),
                        Some(data) if !data.contains_key(key) && !optional => f.push(format!(
                            "{at}: {name} reads key {key:?} of {kind} {obj}, which has no such key"
                        )),
                        Some(data) if name == "SCORING_PASSPHRASE_HASH" => {
                            let v = data.get(key).map(String::as_str).unwrap_or("");
                            if !v.is_empty() {
                                if let Err(e) = runtime_shim::auth::passphrase::parse_hashes(v) {
                                    f.push(format!(
                                        "{at}: {kind} {obj} key {key} is not a hash the runtime reads: {e}"
                                    ));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            check_metrics(&at, pod, c, &literal, f);
        }
    }
}

/// `METRICS_PORT` is a declared port other than `PORT`, and the pod's scrape annotations
/// point at where `/metrics` is served (on `METRICS_PORT`, else on `PORT`).
fn check_metrics(
    at: &str,
    pod: &PodRef<'_>,
    c: &Value,
    literal: &BTreeMap<&str, &str>,
    f: &mut Vec<String>,
) {
    let port = literal.get("PORT").and_then(|p| p.parse::<i64>().ok());
    let metrics = literal.get("METRICS_PORT").map(|p| p.parse::<i64>().ok());
    let declared = |n: i64| {
        c.get("ports").and_then(Value::as_array).is_some_and(|ps| {
            ps.iter()
                .any(|p| p.get("containerPort").and_then(Value::as_i64) == Some(n))
        })
    };
    let served_on = match metrics {
        Some(None) => {
            f.push(format!("{at}: METRICS_PORT is not a number"));
            return;
        }
        Some(Some(m)) => {
            if Some(m) == port {
                f.push(format!(
                    "{at}: METRICS_PORT {m} is PORT; leave it unset to serve /metrics on PORT"
                ));
            }
            if !declared(m) {
                f.push(format!("{at}: no containerPort {m} (METRICS_PORT)"));
            }
            Some(m)
        }
        None => port,
    };
    let long_running = pod.kind != "Job" && pod.kind != "CronJob" && pod.kind != "Pod";
    if !long_running {
        return;
    }
    let a = &pod.annotations;
    if a.get("prometheus.io/scrape").map(String::as_str) != Some("true") {
        f.push(format!(
            "{}: no prometheus.io/scrape: \"true\" annotation on the pod template (the runtime serves /metrics)",
            pod.origin
        ));
        return;
    }
    let annotated = a
        .get("prometheus.io/port")
        .and_then(|p| p.parse::<i64>().ok());
    if annotated != served_on {
        f.push(format!(
            "{}: prometheus.io/port {:?} is not where /metrics is served ({})",
            pod.origin,
            a.get("prometheus.io/port"),
            match (metrics, served_on) {
                (Some(_), Some(m)) => format!("METRICS_PORT {m}"),
                (_, Some(p)) => format!("PORT {p}"),
                _ => "unknown".into(),
            }
        ));
    }
    if let Some(path) = a.get("prometheus.io/path") {
        if path != "/metrics" {
            f.push(format!(
                "{}: prometheus.io/path {path:?} is not /metrics",
                pod.origin
            ));
        }
    }
    if metrics.is_none() && a.contains_key("prometheus.io/scrape") {
        // /metrics on PORT is behind the endpoint security: a scraper needs a credential.
        let secured = c
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| str_at(e, "/name"))
            .any(|n| SECRET_ENV.contains(&n) || n == "OIDC_ISSUER");
        if secured {
            f.push(format!(
                "{at}: /metrics is on PORT behind the endpoint security; set METRICS_PORT so that Prometheus can scrape it"
            ));
        }
    }
}
