//! deploy/grafana/certvault.json, the Grafana dashboard: its JSON model is well formed, and
//! every panel shows metrics, with labels, that a real `renew --metrics-file` run writes
//! (PromQL checked by promtool against that file's series).
//!
//! Schema: no Grafana dashboard validator is in the test bed. Checked: the PyPI
//! `grafana-foundation-sdk` (1769699998!10.1.0) only builds and reads models, without
//! validating (its `from_json` accepts unknown or mistyped fields); the npm `@grafana/schema`
//! (13.2.3) is TypeScript types only, which `tsc` (npm `typescript` 5.9.3) can check the
//! dashboard against (with its enums read as their string values), not in the test bed
//! either. So the JSON model is checked structurally here.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::*;

const DASHBOARD: &str = "deploy/grafana/certvault.json";

/// Grafana's built-in panel types.
const PANEL_TYPES: &[&str] = &[
    "alertlist",
    "annolist",
    "barchart",
    "bargauge",
    "candlestick",
    "canvas",
    "dashlist",
    "datagrid",
    "flamegraph",
    "gauge",
    "geomap",
    "heatmap",
    "histogram",
    "logs",
    "news",
    "nodeGraph",
    "piechart",
    "row",
    "stat",
    "state-timeline",
    "status-history",
    "table",
    "text",
    "timeseries",
    "traces",
    "trend",
    "xychart",
];

/// Grafana's template variable types.
const VARIABLE_TYPES: &[&str] = &[
    "adhoc",
    "constant",
    "custom",
    "datasource",
    "groupby",
    "interval",
    "query",
    "textbox",
];

/// Grafana's own variables, usable in any query.
const GLOBAL_VARIABLES: &[&str] = &[
    "__all",
    "__interval",
    "__interval_ms",
    "__rate_interval",
    "__range",
    "__range_s",
    "__range_ms",
    "__dashboard",
    "__from",
    "__to",
];

fn dashboard() -> Value {
    let path = repo().join(DASHBOARD);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

fn panels(d: &Value) -> &Vec<Value> {
    d["panels"].as_array().unwrap()
}

/// Every (panel, target) of the dashboard.
fn targets(d: &Value) -> Vec<(&Value, &Value)> {
    panels(d)
        .iter()
        .flat_map(|p| {
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| (p, t))
        })
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The variables a text refers to: `$name` and `${name}` (`${name:format}` too).
fn variables_in(text: &str) -> Vec<String> {
    text.split('$')
        .skip(1)
        .filter_map(|rest| {
            let name: String = match rest.strip_prefix('{') {
                Some(r) => r.split(['}', ':']).next().unwrap().to_string(),
                None => rest.chars().take_while(|c| is_ident(*c)).collect(),
            };
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// The variable a datasource reference names: the string `${name}` or the `uid` of a
/// `{type, uid}` reference.
fn datasource_variable(ds: &Value) -> Option<String> {
    let s = ds.as_str().or_else(|| ds["uid"].as_str())?;
    let vars = variables_in(s);
    (vars.len() == 1 && (s == format!("${}", vars[0]) || s == format!("${{{}}}", vars[0])))
        .then(|| vars[0].clone())
}

/// A label matcher of a PromQL selector: label, operator, value.
type Matcher = (String, String, String);

/// The certvault metrics an expression selects (identifiers `certvault_[a-z_]+`), each
/// with the label matchers of its selector.
fn selectors(expr: &str) -> Vec<(String, Vec<Matcher>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("certvault_") {
        let before = rest[..at].chars().last();
        let name: String = rest[at..].chars().take_while(|c| is_ident(*c)).collect();
        rest = &rest[at + name.len()..];
        if before.is_some_and(is_ident) {
            continue;
        }
        let mut matchers = Vec::new();
        if let Some(body) = rest.trim_start().strip_prefix('{') {
            let (inner, after) = split_braces(body);
            matchers = parse_matchers(inner);
            rest = after;
        }
        out.push((name, matchers));
    }
    out
}

/// `body` (after a `{`) split at its closing `}` (outside quotes).
fn split_braces(body: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return (&body[..i], &body[i + 1..]),
            _ => {}
        }
    }
    panic!("no closing brace in {body}")
}

/// `a="x",b=~"y"` -> matchers.
fn parse_matchers(inner: &str) -> Vec<Matcher> {
    let mut out = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let label: String = rest.chars().take_while(|c| is_ident(*c)).collect();
        assert!(!label.is_empty(), "no label name at {rest:?}");
        rest = rest[label.len()..].trim_start();
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .unwrap_or_else(|| panic!("no matcher operator at {rest:?}"));
        rest = rest[op.len()..].trim_start();
        let (value, after) = quoted(rest);
        out.push((label, op.to_string(), value));
        rest = after.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    out
}

/// `"value"...` -> (value unescaped, the text after the closing quote).
fn quoted(s: &str) -> (String, &str) {
    let body = s
        .strip_prefix('"')
        .unwrap_or_else(|| panic!("no quoted value at {s:?}"));
    let mut value = String::new();
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => {
                value.push(if c == 'n' { '\n' } else { c });
                escaped = false;
            }
            '\\' => escaped = true,
            '"' => return (value, &body[i + 1..]),
            _ => value.push(c),
        }
    }
    panic!("unterminated value in {s:?}")
}

/// The labels of `by (...)`, `without (...)`, `on (...)` and `ignoring (...)` clauses.
fn grouping_labels(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for kw in ["by", "without", "on", "ignoring"] {
        let mut rest = expr;
        while let Some(at) = rest.find(kw) {
            let before = rest[..at].chars().last();
            rest = &rest[at + kw.len()..];
            if before.is_some_and(is_ident) || rest.starts_with(is_ident) {
                continue;
            }
            if let Some(list) = rest.trim_start().strip_prefix('(') {
                let list = list.split(')').next().unwrap();
                out.extend(
                    list.split(',')
                        .map(|l| l.trim().to_string())
                        .filter(|l| !l.is_empty()),
                );
            }
        }
    }
    out
}

/// The labels a legend format shows (`{{name}}`).
fn legend_labels(format: &str) -> Vec<String> {
    format
        .split("{{")
        .skip(1)
        .map(|s| s.split("}}").next().unwrap().trim().to_string())
        .collect()
}

/// What is wrong with a Grafana dashboard JSON model (nothing: empty).
fn problems(d: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            out.push(what);
        }
    };
    check(d.is_object(), "the dashboard is not an object".into());
    check(d["uid"] == "certvault", format!("uid {}", d["uid"]));
    check(d["title"] == "certvault", format!("title {}", d["title"]));
    check(
        d["schemaVersion"] == 39,
        format!("schemaVersion {}", d["schemaVersion"]),
    );
    // An exported dashboard has no instance id: Grafana assigns one on import.
    check(d["id"].is_null(), format!("id {}", d["id"]));
    check(
        d["time"]["from"].is_string() && d["time"]["to"].is_string(),
        format!("time {}", d["time"]),
    );
    check(
        d["editable"].is_boolean() || d["editable"].is_null(),
        "editable".into(),
    );
    check(
        d["tags"].is_null()
            || d["tags"]
                .as_array()
                .is_some_and(|t| t.iter().all(Value::is_string)),
        format!("tags {}", d["tags"]),
    );

    // Template variables.
    let empty = Vec::new();
    let vars = d["templating"]["list"].as_array();
    check(vars.is_some(), "templating.list is not a list".into());
    let vars = vars.unwrap_or(&empty);
    let mut var_types: BTreeMap<String, String> = BTreeMap::new();
    for v in vars {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        check(
            !name.is_empty() && name.chars().all(is_ident),
            format!("variable name {}", v["name"]),
        );
        let kind = v["type"].as_str().unwrap_or_default();
        check(
            VARIABLE_TYPES.contains(&kind),
            format!("{name}: variable type {}", v["type"]),
        );
        check(
            var_types.insert(name.clone(), kind.into()).is_none(),
            format!("variable {name} twice"),
        );
        for flag in ["includeAll", "multi"] {
            check(
                v[flag].is_null() || v[flag].is_boolean(),
                format!("{name}: {flag} {}", v[flag]),
            );
        }
        check(
            v["includeAll"] != true || v["allValue"].is_string(),
            format!("{name}: includeAll without allValue"),
        );
    }
    for v in vars {
        let name = v["name"].as_str().unwrap_or_default();
        match v["type"].as_str() {
            Some("datasource") => check(
                v["query"].as_str().is_some_and(|q| !q.is_empty()),
                format!("{name}: a datasource variable names its plugin in query"),
            ),
            Some("query") => {
                let ds = datasource_variable(&v["datasource"]);
                check(
                    ds.as_ref()
                        .is_some_and(|ds| var_types.get(ds).is_some_and(|t| t == "datasource")),
                    format!(
                        "{name}: datasource {} is no datasource variable",
                        v["datasource"]
                    ),
                );
                let query = v["query"].as_str().or_else(|| v["query"]["query"].as_str());
                check(
                    query.is_some_and(|q| !q.is_empty()),
                    format!("{name}: no query"),
                );
            }
            _ => {}
        }
    }
    // The variables this dashboard is built on.
    let var = |name: &str| vars.iter().find(|v| v["name"] == name);
    check(
        var("datasource").is_some_and(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "no datasource variable datasource of Prometheus".into(),
    );
    check(
        var("shard").is_some_and(|v| {
            v["type"] == "query"
                && (v["query"]
                    == "label_values(certvault_run_last_success_timestamp_seconds, shard)"
                    || v["query"]["query"]
                        == "label_values(certvault_run_last_success_timestamp_seconds, shard)")
                && v["includeAll"] == true
                && v["allValue"] == ".*"
                && v["multi"] == true
        }),
        format!("shard variable {:?}", var("shard")),
    );

    // Panels.
    let list = d["panels"].as_array();
    check(list.is_some_and(|l| !l.is_empty()), "no panels list".into());
    let list = list.unwrap_or(&empty);
    let mut ids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    let mut boxes: Vec<(u64, u64, u64, u64, String)> = Vec::new();
    for p in list {
        let title = p["title"].as_str().unwrap_or_default().to_string();
        let what = format!("panel {} {title:?}", p["id"]);
        check(!title.is_empty(), format!("{what}: no title"));
        check(titles.insert(title.clone()), format!("{what}: title twice"));
        match p["id"].as_u64() {
            Some(id) if id > 0 => check(ids.insert(id), format!("{what}: id twice")),
            _ => check(false, format!("{what}: id is no positive integer")),
        }
        let kind = p["type"].as_str().unwrap_or_default();
        check(
            PANEL_TYPES.contains(&kind),
            format!("{what}: panel type {}", p["type"]),
        );
        let g = &p["gridPos"];
        let n = |k: &str| g[k].as_u64();
        match (n("x"), n("y"), n("w"), n("h")) {
            (Some(x), Some(y), Some(w), Some(h)) => {
                check(w >= 1 && h >= 1, format!("{what}: empty gridPos {g}"));
                check(x + w <= 24, format!("{what}: gridPos x+w > 24: {g}"));
                for (bx, by, bw, bh, other) in &boxes {
                    let apart = x + w <= *bx || bx + bw <= x || y + h <= *by || by + bh <= y;
                    check(apart, format!("{what}: overlaps {other}"));
                }
                boxes.push((x, y, w, h, what.clone()));
            }
            _ => check(false, format!("{what}: gridPos {g}")),
        }
        let is_ds_var = |ds: &Value| {
            datasource_variable(ds)
                .is_some_and(|v| var_types.get(&v).is_some_and(|t| t == "datasource"))
        };
        check(
            is_ds_var(&p["datasource"]),
            format!(
                "{what}: datasource {} is no datasource variable",
                p["datasource"]
            ),
        );
        check(
            p["fieldConfig"]["defaults"].is_object() && p["fieldConfig"]["overrides"].is_array(),
            format!("{what}: fieldConfig"),
        );
        check(p["options"].is_object(), format!("{what}: options"));
        if kind == "row" || kind == "text" {
            continue;
        }
        let ts = p["targets"].as_array();
        check(
            ts.is_some_and(|t| !t.is_empty()),
            format!("{what}: no targets"),
        );
        let mut refs = BTreeSet::new();
        for t in ts.unwrap_or(&empty) {
            let r = t["refId"].as_str().unwrap_or_default();
            check(!r.is_empty(), format!("{what}: a target without refId"));
            check(
                refs.insert(r.to_string()),
                format!("{what}: refId {r} twice"),
            );
            check(
                t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                format!("{what}: target {r} has no expr"),
            );
            check(
                t["datasource"].is_null() || is_ds_var(&t["datasource"]),
                format!("{what}: target {r}: datasource {}", t["datasource"]),
            );
        }
    }

    // Every variable a query uses exists; every certvault metric is filtered by shard.
    let mut queries: Vec<(String, String)> = targets(d)
        .into_iter()
        .map(|(p, t)| {
            (
                format!("panel {} {}", p["id"], t["refId"]),
                t["expr"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for v in vars {
        if let Some(q) = v["query"].as_str() {
            queries.push((format!("variable {}", v["name"]), q.to_string()));
        }
    }
    for (what, q) in &queries {
        for name in variables_in(q) {
            check(
                var_types.contains_key(&name) || GLOBAL_VARIABLES.contains(&name.as_str()),
                format!("{what}: no variable {name} for {q}"),
            );
        }
    }
    for (p, t) in targets(d) {
        let expr = t["expr"].as_str().unwrap_or_default();
        let found = selectors(expr);
        check(
            !found.is_empty(),
            format!("panel {}: no certvault metric in {expr}", p["id"]),
        );
        for (metric, matchers) in found {
            let shard = ("shard".to_string(), "=~".to_string(), "$shard".to_string());
            check(
                matchers.contains(&shard),
                format!(
                    "panel {}: {metric} not filtered by shard=~\"$shard\"",
                    p["id"]
                ),
            );
        }
    }
    out
}

#[test]
fn grafana_dashboard_is_a_well_formed_model() {
    let d = dashboard();
    let found = problems(&d);
    assert!(found.is_empty(), "{DASHBOARD}:\n{}", found.join("\n"));

    // The checks do find what they look for.
    let broken = |what: &str, change: &dyn Fn(&mut Value)| {
        let mut bad = d.clone();
        change(&mut bad);
        let found = problems(&bad);
        assert!(!found.is_empty(), "{what}: not found");
    };
    broken("a panel id twice", &|b| {
        b["panels"][1]["id"] = b["panels"][0]["id"].clone()
    });
    broken("a panel past the grid's 24 columns", &|b| {
        let w = b["panels"][0]["gridPos"]["w"].as_u64().unwrap();
        b["panels"][0]["gridPos"]["x"] = json!(25 - w);
    });
    broken("an unknown panel type", &|b| {
        b["panels"][0]["type"] = json!("timeserie")
    });
    broken("a datasource no variable names", &|b| {
        b["panels"][0]["datasource"] = json!({"type": "prometheus", "uid": "${prometheus}"})
    });
    broken("a refId twice", &|b| {
        let t = b["panels"][0]["targets"][0].clone();
        b["panels"][0]["targets"].as_array_mut().unwrap().push(t);
    });
    broken("a target without expr", &|b| {
        b["panels"][0]["targets"][0]
            .as_object_mut()
            .unwrap()
            .remove("expr");
    });
    broken("a metric not filtered by shard", &|b| {
        b["panels"][0]["targets"][0]["expr"] = json!("sum(certvault_dns_leftovers)")
    });
    broken("an unknown variable", &|b| {
        b["panels"][0]["targets"][0]["expr"] =
            json!("sum(certvault_dns_leftovers{shard=~\"$shards\"})")
    });
    broken("includeAll without allValue", &|b| {
        let list = b["templating"]["list"].as_array_mut().unwrap();
        let shard = list.iter_mut().find(|v| v["name"] == "shard").unwrap();
        shard.as_object_mut().unwrap().remove("allValue");
    });
}

/// A metrics file: metric name -> the label sets of its samples.
fn exposition(text: &str) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let mut out: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            out.entry(rest.split(' ').next().unwrap().to_string())
                .or_default();
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name: String = line.chars().take_while(|c| is_ident(*c)).collect();
        let rest = &line[name.len()..];
        let labels = match rest.strip_prefix('{') {
            Some(body) => parse_matchers(split_braces(body).0)
                .into_iter()
                .map(|(l, op, v)| {
                    assert_eq!(op, "=", "{line}");
                    (l, v)
                })
                .collect(),
            None => BTreeMap::new(),
        };
        out.entry(name).or_default().push(labels);
    }
    out
}

/// Each query must return data from the samples in `text` (`SERIES VALUE` lines): for
/// each, an alerting rule `absent(QUERY)` that must not fire (promtool test rules, the
/// samples as its input series).
fn promtool_queries_return_data(text: &str, queries: &[(String, String)]) {
    let dir = tempdir("dashboard-rules");
    let rules: Vec<Value> = queries
        .iter()
        .map(|(name, expr)| json!({"alert": name, "expr": format!("absent({expr})")}))
        .collect();
    std::fs::write(
        dir.join("rules.yml"),
        json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();
    let series: Vec<Value> = text
        .lines()
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            json!({"series": series, "values": format!("{value}x10")})
        })
        .collect();
    let tests: Vec<Value> = queries
        .iter()
        .map(|(name, _)| json!({"eval_time": "5m", "alertname": name, "exp_alerts": []}))
        .collect();
    std::fs::write(
        dir.join("tests.yml"),
        json!({
            "rule_files": ["rules.yml"],
            "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": tests}]
        })
        .to_string(),
    )
    .unwrap();
    let check = Command::new(env("PROMTOOL"))
        .args(["check", "rules", "rules.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let test = Command::new(env("PROMTOOL"))
        .args(["test", "rules", "tests.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "a panel query returns no data (its absent() fired):\n{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}

#[test]
fn grafana_dashboard_shows_the_metrics_a_real_run_writes() {
    // A sharded installation (as in deploy/kubernetes/components/sharded, one part) with a
    // certificate that renews and one whose auth hook fails when BREAK is set.
    let (e, d) = Env::with_cert("dash", "web");
    e.issue_with_auth_hook("flaky", &[&format!("f.{d}")], &breakable_auth_hook())
        .ok();
    let pod = e
        .with_var("CERTVAULT_SHARD", "auto")
        .with_var("CERTVAULT_SHARD_COUNT", "1")
        .with_var("JOB_COMPLETION_INDEX", "0");
    let dir = tempdir("dashboard");
    let file = dir.join("certvault.prom");
    let file_arg = file.display().to_string();
    pod.run(&["renew", "--metrics-file", &file_arg]).ok();
    let ok_text = std::fs::read_to_string(&file).unwrap();
    // Then a run in which `flaky` fails: it is not ready.
    e.fresh_account();
    let failed = pod
        .with_var("BREAK", "1")
        .run(&["renew", "--force", "--metrics-file", &file_arg]);
    assert_eq!(failed.code, 1, "{}", failed.all());
    let failed_text = std::fs::read_to_string(&file).unwrap();
    assert_contains(
        &failed_text,
        "certvault_certificate_ready_status{shard=\"0/1\",condition=\"False\",name=\"flaky\"} 1",
    );
    // The failed run keeps the last success time of the sharded one before it.
    assert_contains(
        &failed_text,
        "certvault_run_last_success_timestamp_seconds{shard=\"0/1\"} ",
    );
    // What Prometheus has seen after both runs: each series with its latest value.
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for t in [&ok_text, &failed_text] {
        for l in t
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (series, value) = l.rsplit_once(' ').unwrap();
            latest.insert(series.to_string(), value.to_string());
        }
    }
    let text: String = latest.iter().map(|(s, v)| format!("{s} {v}\n")).collect();
    let metrics = exposition(&text);
    assert!(metrics.len() >= 7, "{text}");
    let labels_of = |metric: &str| -> BTreeSet<String> {
        metrics[metric]
            .iter()
            .flat_map(|s| s.keys().cloned())
            .collect()
    };

    let dash = dashboard();
    let mut shown = BTreeSet::new();
    let mut queries = Vec::new();
    for (p, t) in targets(&dash) {
        let what = format!("panel {} {} {}", p["id"], p["title"], t["refId"]);
        let expr = t["expr"].as_str().unwrap();
        let found = selectors(expr);
        let mut expr_labels = BTreeSet::new();
        for (metric, matchers) in &found {
            assert!(
                metrics.contains_key(metric),
                "{what}: certvault writes no {metric}\n{text}"
            );
            shown.insert(metric.clone());
            let labels = labels_of(metric);
            for (label, op, value) in matchers {
                assert!(
                    labels.contains(label),
                    "{what}: {metric} has no label {label} ({labels:?})"
                );
                if op == "=" {
                    assert!(
                        metrics[metric].iter().any(|s| s.get(label) == Some(value)),
                        "{what}: no {metric} sample has {label}=\"{value}\"\n{text}"
                    );
                }
            }
            expr_labels.extend(labels);
        }
        let legend = t["legendFormat"].as_str().unwrap_or_default();
        for label in grouping_labels(expr)
            .into_iter()
            .chain(legend_labels(legend))
        {
            assert!(
                expr_labels.contains(&label),
                "{what}: {expr} uses label {label}, its metrics have {expr_labels:?}"
            );
        }
        let shard_value = &metrics[&found[0].0][0]["shard"];
        for (mode, value) in [("all", ".*"), ("one", shard_value.as_str())] {
            queries.push((
                format!("panel_{}_{}_{mode}", p["id"], t["refId"].as_str().unwrap()),
                expr.replace("$shard", value),
            ));
        }
    }
    let unshown: Vec<&String> = metrics.keys().filter(|m| !shown.contains(*m)).collect();
    assert!(unshown.is_empty(), "no panel shows {unshown:?}");

    // The shard variable lists a metric and label the file has.
    let vars = dash["templating"]["list"].as_array().unwrap();
    let shard_var = vars.iter().find(|v| v["name"] == "shard").unwrap();
    let q = shard_var["query"]
        .as_str()
        .or_else(|| shard_var["query"]["query"].as_str())
        .unwrap();
    let args = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap();
    let (metric, label) = args.split_once(',').unwrap();
    assert!(
        labels_of(metric.trim()).contains(label.trim()),
        "shard variable: {q}"
    );

    // Every query parses and returns data, for All shards and for this one.
    promtool_queries_return_data(&text, &queries);
}
