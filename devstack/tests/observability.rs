//! The operators' view, proven against live data. The local stack runs the
//! real service binaries; a real Prometheus scrapes them with
//! `grafana/prometheus.yml` and evaluates `grafana/alerts.yml`. Every query of
//! every panel and template variable of `grafana/dashboards/` is evaluated
//! through Prometheus's HTTP API and must return series (with a finite value
//! somewhere in the panel), every metric a dashboard or alert names must be
//! exported, every rule must evaluate cleanly, and a real outage (the
//! aggregator killed) must fire `OracleNoLeader`. The services' logs must be
//! JSON lines carrying pair, source, round and tx hash as fields.
//!
//! Static checks of the same files (layout, variables, provisioning, the
//! runbook of every alert) need no stack and run first.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod rig;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use oracle_devstack::{eventually, tools};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const DASHBOARDS: [&str; 4] = ["overview", "sources", "chain", "bff"];

fn grafana_dir() -> PathBuf {
    tools::workspace_root().join("grafana")
}

fn load_dashboards() -> Vec<(String, Value)> {
    DASHBOARDS
        .iter()
        .map(|name| {
            let path = grafana_dir().join(format!("dashboards/{name}.json"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            ((*name).to_owned(), json)
        })
        .collect()
}

/// Every non-row panel, including those nested in collapsed rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = vec![];
    for p in dashboard["panels"].as_array().unwrap() {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten());
        } else {
            out.push(p);
        }
    }
    out
}

fn exprs(panel: &Value) -> Vec<String> {
    panel["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["expr"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `(name, metric, label)` of each `label_values(metric, label)` variable.
fn query_variables(dashboard: &Value) -> Vec<(String, String, String)> {
    dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let q = v["query"]["query"].as_str().unwrap();
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| {
                    panic!("variable query {q:?} is not label_values(metric, label)")
                });
            let (metric, label) = inner.split_once(',').unwrap();
            (
                v["name"].as_str().unwrap().to_owned(),
                metric.trim().to_owned(),
                label.trim().to_owned(),
            )
        })
        .collect()
}

/// The `$name` references of an expression (Grafana's `$__…` built-ins excluded).
fn variable_refs(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        let name: String = rest
            .trim_start_matches('{')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && !name.starts_with("__") {
            out.insert(name);
        }
    }
    out
}

/// The metric names an expression selects: the oracle's own (`oracle_…`) and `up`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let bytes = expr.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        if ident(bytes[i]) && (i == 0 || !ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            let next = expr[i..].trim_start().chars().next();
            // `up` the metric, not a label named `up` nor a function.
            if word.starts_with("oracle_")
                || (word == "up" && next != Some('(') && next != Some('='))
            {
                out.insert(word.to_owned());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// One rule of `alerts.yml`.
#[derive(Debug)]
struct Alert {
    name: String,
    /// The `runbook` annotation.
    runbook: String,
    /// The expression (a `|` block joined into one line).
    expr: String,
}

/// The rules of `alerts.yml`, read line by line (no YAML parser needed for
/// the file's regular layout).
fn alerts() -> Vec<Alert> {
    let text = std::fs::read_to_string(grafana_dir().join("alerts.yml")).unwrap();
    let mut out: Vec<Alert> = vec![];
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("- alert: ") {
            out.push(Alert {
                name: name.to_owned(),
                runbook: String::new(),
                expr: String::new(),
            });
            continue;
        }
        let current = out.last_mut();
        if let Some(runbook) = trimmed.strip_prefix("runbook: ") {
            current.expect("runbook after an alert").runbook = runbook.to_owned();
        } else if let Some(rest) = trimmed.strip_prefix("expr:") {
            let current = current.expect("expr after an alert");
            if rest.trim() != "|" {
                current.expr = rest.trim().to_owned();
                continue;
            }
            let indent = line.len() - trimmed.len();
            while let Some(next) = lines.peek() {
                let next_indent = next.len() - next.trim_start().len();
                if next.trim().is_empty() || next_indent <= indent {
                    break;
                }
                current.expr.push_str(next.trim());
                current.expr.push(' ');
                lines.next();
            }
        }
    }
    out
}

#[test]
fn dashboards_are_well_formed_and_cover_what_operators_watch() {
    let dashboards = load_dashboards();
    let mut uids = BTreeSet::new();
    for (name, d) in &dashboards {
        let uid = d["uid"].as_str().unwrap();
        assert!(uids.insert(uid.to_owned()), "{name}: uid {uid} used twice");
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{name}: title"
        );
        let vars: BTreeMap<String, &Value> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["name"].as_str().unwrap().to_owned(), v))
            .collect();
        let ds = vars.get("datasource").expect("a datasource variable");
        assert_eq!(ds["type"], "datasource");
        assert_eq!(ds["query"], "prometheus");
        let mut ids = BTreeSet::new();
        let mut cells: BTreeMap<(u64, u64), String> = BTreeMap::new();
        for p in d["panels"].as_array().unwrap() {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{name}: panel id of {title} reused"
            );
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(
                w >= 1 && x + w <= 24,
                "{name}: {title} is outside the 24-column grid"
            );
            for cx in x..x + w {
                for cy in y..y + h {
                    if let Some(other) = cells.insert((cx, cy), title.clone()) {
                        panic!("{name}: panels {other:?} and {title:?} overlap");
                    }
                }
            }
        }
        let mut names = BTreeSet::new();
        for p in panels(d) {
            let title = p["title"].as_str().unwrap();
            assert!(
                p["description"].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: {title} needs a description"
            );
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{name}: {title}");
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}: {title} has no query");
            let refs: BTreeSet<&str> = targets
                .iter()
                .map(|t| t["refId"].as_str().unwrap())
                .collect();
            assert_eq!(
                refs.len(),
                targets.len(),
                "{name}: {title}: refIds must differ"
            );
            for expr in exprs(p) {
                assert!(!expr.trim().is_empty(), "{name}: {title}: empty query");
                for var in variable_refs(&expr) {
                    assert!(
                        vars.contains_key(&var),
                        "{name}: {title} uses ${var}, which is not defined"
                    );
                }
                names.extend(metric_names(&expr));
            }
        }
        // What the issue asks each dashboard to show.
        let wanted: &[&str] = match name.as_str() {
            "overview" => &[
                "oracle_aggregator_onchain_updated_timestamp_seconds",
                "oracle_aggregator_onchain_price",
                "oracle_aggregator_aggregate_price",
                "oracle_aggregator_deviation_bps",
                "oracle_aggregator_sources",
                "oracle_aggregator_min_sources",
                "oracle_aggregator_submissions_total",
            ],
            "sources" => &[
                "oracle_fetchers_requests_total",
                "oracle_fetchers_request_duration_seconds_bucket",
                "oracle_fetchers_retries_total",
                "oracle_fetchers_rate_limit_wait_seconds_total",
                "oracle_fetchers_circuit_state",
            ],
            "chain" => &[
                "oracle_aggregator_submissions_total",
                "oracle_aggregator_confirmation_seconds_bucket",
                "oracle_aggregator_gas_used_sum",
                "oracle_aggregator_signer_balance_wei",
                "oracle_aggregator_leader",
            ],
            "bff" => &[
                "oracle_bff_requests_total",
                "oracle_bff_request_duration_seconds_bucket",
                "oracle_bff_sse_clients",
            ],
            _ => unreachable!(),
        };
        for metric in wanted {
            assert!(names.contains(*metric), "{name} shows nothing of {metric}");
        }
        let want_vars: &[&str] = match name.as_str() {
            "overview" | "chain" => &["pair"],
            "sources" => &["source", "pair"],
            _ => &[],
        };
        for v in want_vars {
            assert!(vars.contains_key(*v), "{name} needs a ${v} variable");
        }
    }
}

#[test]
fn provisioning_loads_the_dashboards_and_every_alert_has_a_runbook() {
    let provider =
        std::fs::read_to_string(grafana_dir().join("provisioning/dashboards/oracle.yml")).unwrap();
    let path = provider
        .lines()
        .find_map(|l| l.trim().strip_prefix("path: "))
        .expect("a file provider path");
    assert!(path.ends_with("/dashboards"), "the provider reads {path}");
    assert!(provider.contains("type: file"));
    let datasource =
        std::fs::read_to_string(grafana_dir().join("provisioning/datasources/prometheus.yml"))
            .unwrap();
    assert!(datasource.contains("type: prometheus") && datasource.contains("isDefault: true"));

    let ops = std::fs::read_to_string(tools::workspace_root().join("docs/operations.md")).unwrap();
    let headings: BTreeSet<String> = ops
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let alerts = alerts();
    assert!(alerts.len() >= 8, "alerts.yml: {alerts:?}");
    for Alert { name, runbook, .. } in alerts {
        let anchor = runbook
            .strip_prefix("docs/operations.md#")
            .unwrap_or_else(|| panic!("{name}: runbook {runbook:?}"));
        // Two alerts may share a section: the anchor must name a heading,
        // and the section must mention the alert.
        assert!(
            headings.contains(anchor),
            "{name}: docs/operations.md has no section #{anchor}"
        );
        assert!(
            ops.contains(&format!("`{name}`")) || headings.contains(&name.to_ascii_lowercase()),
            "{name} is not documented"
        );
    }
}

/// Prometheus's HTTP API.
struct Prom {
    url: String,
    http: reqwest::Client,
}

impl Prom {
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .query(query)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], "success", "{path} {query:?}: {body}");
        body["data"].clone()
    }

    /// The series an instant query returns now.
    async fn query(&self, expr: &str) -> Vec<Value> {
        self.get("/api/v1/query", &[("query", expr)]).await["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn finite(series: &Value) -> bool {
    series["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
        .is_some_and(f64::is_finite)
}

/// What Grafana sends for an expression: variables as `(a|b)` regexes (All),
/// `$__rate_interval` as four 5 s scrapes rounded up to a minute.
fn substitute(expr: &str, values: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = expr.replace("$__rate_interval", "1m");
    for (name, vals) in values {
        out = out.replace(&format!("${name}"), &format!("({})", vals.join("|")));
    }
    out
}

/// Requests against the bff until cancelled: every route operators chart,
/// an unknown pair (404), a refresh, and one live stream client.
fn drive_traffic(bff: String, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut stream = http.get(format!("{bff}/v1/stream")).send().await.unwrap();
        assert_eq!(stream.status(), 200);
        let _ = http
            .post(format!("{bff}/v1/prices/BTC-USD/refresh"))
            .send()
            .await;
        let mut open = true;
        loop {
            for path in [
                "/v1/feeds",
                "/v1/prices",
                "/v1/prices/BTC-USD",
                "/v1/prices/ETH-USD",
                "/v1/prices/DOGE-USD",
                "/v1/submissions?limit=5",
            ] {
                let _ = http.get(format!("{bff}{path}")).send().await;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                // Reading keeps the stream client alive and its buffer empty.
                chunk = stream.chunk(), if open => open = matches!(chunk, Ok(Some(_))),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_and_alert_is_backed_by_live_series() {
    let mut stack = rig::process_stack("observability", None).await;
    let sources: BTreeSet<String> = stack
        .config
        .sources
        .keys()
        .map(|s| s.as_str().to_owned())
        .collect();
    let prom = Prom {
        url: stack
            .start_prometheus(true)
            .await
            .expect("prometheus starts"),
        http: reqwest::Client::new(),
    };

    // Faults that operators must be able to see: a source failing (errors,
    // retries, an open circuit) and one rate-limiting, so that fallbacks are
    // polled to keep the quorum.
    let http = reqwest::Client::new();
    for (source, faults) in [
        ("kraken", json!({"status": 500})),
        ("binance", json!({"status": 429, "retry_after_s": 1})),
    ] {
        let r = http
            .put(format!("{}/_sim/faults/{source}", stack.simulator_url))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "fault on {source}");
    }
    let stop = CancellationToken::new();
    let traffic = drive_traffic(stack.bff_url.clone(), stop.clone());

    // Every target is scraped and up.
    eventually(Duration::from_secs(60), "all four targets up", || async {
        let targets = prom.get("/api/v1/targets", &[]).await;
        let active = targets["activeTargets"].as_array()?.clone();
        let jobs: BTreeSet<&str> = active
            .iter()
            .filter(|t| t["health"] == "up")
            .filter_map(|t| t["labels"]["job"].as_str())
            .collect();
        (jobs == BTreeSet::from(["fetchers", "aggregator", "bff", "prometheus"])).then_some(())
    })
    .await
    .unwrap();

    // Template variables: values exist, and name every feed and source.
    let dashboards = load_dashboards();
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, d) in &dashboards {
        for (name, metric, label) in query_variables(d) {
            let found = eventually(
                Duration::from_secs(60),
                &format!("${name} values"),
                || async {
                    let v = prom
                        .get(
                            &format!("/api/v1/label/{label}/values"),
                            &[("match[]", metric.as_str())],
                        )
                        .await;
                    let v: Vec<String> = v
                        .as_array()?
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect();
                    (!v.is_empty()).then_some(v)
                },
            )
            .await
            .unwrap();
            values.insert(name, found);
        }
    }
    assert_eq!(values["pair"], ["BTC/USD", "ETH/USD"]);
    assert_eq!(
        values["source"].iter().cloned().collect::<BTreeSet<_>>(),
        sources
    );

    // Every panel: each query returns series, and the panel has a finite value.
    let mut queries: Vec<(String, String, String)> = vec![];
    for (name, d) in &dashboards {
        for p in panels(d) {
            for e in exprs(p) {
                queries.push((
                    name.clone(),
                    p["title"].as_str().unwrap().to_owned(),
                    substitute(&e, &values),
                ));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut missing = vec![];
        let mut by_panel: BTreeMap<(String, String), bool> = BTreeMap::new();
        for (dash, title, q) in &queries {
            let result = prom.query(q).await;
            if result.is_empty() {
                missing.push(format!("{dash} / {title}: no series for {q}"));
            }
            *by_panel.entry((dash.clone(), title.clone())).or_default() |=
                result.iter().any(finite);
        }
        missing.extend(
            by_panel
                .iter()
                .filter(|(_, ok)| !**ok)
                .map(|((d, t), _)| format!("{d} / {t}: no finite value")),
        );
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "panels without data:\n{}",
            missing.join("\n")
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // The data is the oracle's, not just present: prices on chain and off
    // chain agree, feeds are fresh, exactly one aggregator leads.
    for pair in ["BTC/USD", "ETH/USD"] {
        let on = &prom
            .query(&format!(
                "oracle_aggregator_onchain_price{{pair=\"{pair}\"}}"
            ))
            .await[0];
        let off = &prom
            .query(&format!(
                "oracle_aggregator_aggregate_price{{pair=\"{pair}\"}}"
            ))
            .await[0];
        let (on, off): (f64, f64) = (
            on["value"][1].as_str().unwrap().parse().unwrap(),
            off["value"][1].as_str().unwrap().parse().unwrap(),
        );
        assert!(
            on > 0.0 && (on - off).abs() / on < 0.01,
            "{pair}: on chain {on}, off chain {off}"
        );
    }
    let leaders = prom.query("sum(oracle_aggregator_leader)").await;
    assert_eq!(leaders[0]["value"][1], "1");

    // Every metric a dashboard or an alert names is exported by a service.
    let exported: BTreeSet<String> = prom
        .get("/api/v1/label/__name__/values", &[])
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let mut named = BTreeSet::new();
    for (_, _, q) in &queries {
        named.extend(metric_names(q));
    }
    let alerts = alerts();
    for a in &alerts {
        assert!(!a.expr.is_empty(), "{}: no expr", a.name);
        named.extend(metric_names(&a.expr));
    }
    let unknown: Vec<&String> = named.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(unknown.is_empty(), "no service exports {unknown:?}");

    // Every rule loaded and evaluates without error; the healthy stack does
    // not page anyone for a stale feed or a missing leader.
    let want: BTreeSet<String> = alerts.into_iter().map(|a| a.name).collect();
    eventually(
        Duration::from_secs(60),
        "every rule evaluated cleanly",
        || async {
            let data = prom.get("/api/v1/rules", &[]).await;
            let rules: Vec<Value> = data["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            let names: BTreeSet<String> = rules
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_owned))
                .collect();
            assert_eq!(names, want, "rules loaded by Prometheus");
            for r in &rules {
                assert_ne!(r["health"], "err", "{}: {}", r["name"], r["lastError"]);
            }
            rules.iter().all(|r| r["health"] == "ok").then_some(rules)
        },
    )
    .await
    .map(|rules| {
        for r in rules {
            if ["OracleFeedStale", "OracleNoLeader", "OracleQuorumLost"]
                .contains(&r["name"].as_str().unwrap())
            {
                assert_eq!(
                    r["state"], "inactive",
                    "{} on a healthy stack: {r}",
                    r["name"]
                );
            }
        }
    })
    .unwrap();

    // Logs: JSON lines with the fields operators filter on.
    let logs: BTreeMap<String, PathBuf> = stack.logs().into_iter().collect();
    let lines = |name: &str| -> Vec<Value> {
        std::fs::read_to_string(&logs[name])
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{name} wrote a line that is not JSON ({e}): {l}"))
            })
            .collect()
    };
    // One log per node; the leader's has the updates.
    let aggregator: Vec<Value> = logs
        .keys()
        .filter(|name| name.starts_with("oracle-aggregator-"))
        .flat_map(|name| lines(name))
        .collect();
    let updated = aggregator
        .iter()
        .find(|l| l["message"] == "feed updated")
        .expect("the aggregator logged an update");
    assert!(
        updated["pair"].is_string() && updated["round"].as_u64().is_some_and(|r| r >= 1),
        "{updated}"
    );
    assert!(
        updated["tx_hash"]
            .as_str()
            .is_some_and(|h| h.starts_with("0x") && h.len() == 66),
        "{updated}"
    );
    let fetchers = lines("oracle-fetchers");
    let failed = fetchers
        .iter()
        .find(|l| l["message"] == "fetch failed" && l["source"] == "kraken")
        .expect("the fetchers logged kraken's failures");
    assert!(
        failed["pair"].is_string() && failed["level"] == "WARN",
        "{failed}"
    );
    let bff = lines("oracle-bff");
    assert!(!bff.is_empty() && bff.iter().all(|l| l["timestamp"].is_string()));

    // A real outage fires its alert: with every aggregator node gone nobody leads.
    stack.kill_service("aggregator").await;
    eventually(
        Duration::from_secs(120),
        "OracleNoLeader firing",
        || async {
            let data = prom.get("/api/v1/alerts", &[]).await;
            data["alerts"]
                .as_array()?
                .iter()
                .any(|a| a["labels"]["alertname"] == "OracleNoLeader" && a["state"] == "firing")
                .then_some(())
        },
    )
    .await
    .unwrap();

    stop.cancel();
    let _ = traffic.await;
    stack.stop().await;
}
