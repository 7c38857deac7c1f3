//! Router tests: every endpoint and error path that needs no chain, and the
//! chain-failure path against an RPC address where nothing listens.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::sync::Arc;

use alloy::primitives::Address;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use oracle_bff::{AppState, router};
use prometheus::Registry;
use serde_json::Value;
use tower::ServiceExt;

mod common;
use common::state;

async fn get(path: &str, registry: &Registry) -> (StatusCode, Value) {
    send(Request::get(path).body(Body::empty()).unwrap(), registry).await
}

async fn post(path: &str, body: &'static str) -> (StatusCode, Value) {
    send(
        Request::post(path).body(Body::from(body)).unwrap(),
        &Registry::new(),
    )
    .await
}

async fn send(request: Request<Body>, registry: &Registry) -> (StatusCode, Value) {
    let response = router(state(registry)).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn healthz_is_ok() {
    let (status, body) = get("/healthz", &Registry::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn malformed_pair_is_400_with_stable_code() {
    for path in [
        "/v1/prices/btc-usd",
        "/v1/prices/BTC",
        "/v1/prices/BTC-USD-EUR",
        "/v1/prices/%F0%9F%92%A9",
    ] {
        let (status, body) = get(path, &Registry::new()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["code"], "invalid_pair", "{path}");
        assert!(body["message"].as_str().unwrap().contains("invalid pair"));
    }
}

#[tokio::test]
async fn unknown_pair_is_404_with_stable_code() {
    let (status, body) = get("/v1/prices/DOGE-USD", &Registry::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "unknown_pair");
}

#[tokio::test]
async fn unknown_route_is_json_404() {
    let (status, body) = get("/v2/anything", &Registry::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn chain_failure_is_503_chain_unavailable_with_retry_after() {
    let (status, headers, body) = send_to(
        state(&Registry::new()),
        Request::get("/v1/prices/BTC-USD")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "chain_unavailable");
    assert_eq!(headers["retry-after"], "1");
}

#[tokio::test]
async fn requests_are_counted_by_route_pattern_not_raw_path() {
    let registry = Registry::new();
    let _ = get("/v1/prices/DOGE-USD", &registry).await;
    let text = oracle_common::telemetry::render(&registry);
    assert!(
        text.contains(r#"oracle_bff_requests_total{route="/v1/prices/{pair}",status="404"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains("DOGE"),
        "raw paths must not become labels: {text}"
    );
}

#[tokio::test]
async fn feeds_lists_policy_and_where_to_read_on_chain() {
    let (status, body) = get("/v1/feeds", &Registry::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["chain_id"], 31337);
    assert_eq!(body["contract"], Address::ZERO.to_checksum(None));
    let feeds = body["feeds"].as_array().unwrap();
    assert_eq!(feeds.len(), 1);
    let btc = &feeds[0];
    assert_eq!(btc["pair"], "BTC/USD");
    assert_eq!(btc["path"], "BTC-USD");
    let pair: oracle_common::Pair = "BTC/USD".parse().unwrap();
    assert_eq!(btc["feed_id"], pair.feed_id().to_string());
    assert_eq!(btc["decimals"], 8);
    assert_eq!(btc["sources"], serde_json::json!(["kraken"]));
    assert_eq!(btc["heartbeat_s"], 60);
    assert_eq!(btc["deviation_bps"], 50);
    assert_eq!(btc["max_price"], "1000000");
}

#[tokio::test]
async fn bad_query_parameters_are_400_before_any_chain_read() {
    // The RPC is dead: a 400 here proves validation comes first.
    for path in [
        "/v1/prices/BTC-USD?block=-1",
        "/v1/prices/BTC-USD?block=latest",
        "/v1/prices/BTC-USD?block=1&block=2",
        "/v1/prices/BTC-USD?blok=1",
        "/v1/prices?block=1.5",
        "/v1/prices?pair=BTC-USD",
        "/v1/feeds?x=1",
        "/v1/prices/BTC-USD/history?limit=0",
        "/v1/prices/BTC-USD/history?limit=1001",
        "/v1/prices/BTC-USD/history?cursor=abc",
        "/v1/prices/BTC-USD/history?cursor=%2B1-2",
        "/v1/prices/BTC-USD/history?from=%2B5",
        "/v1/stream?pairs=",
        "/v1/stream?pairs=BTC-USD,",
        "/v1/prices/BTC-USD/history?to=x",
    ] {
        let (status, body) = get(path, &Registry::new()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["code"], "invalid_parameter", "{path}");
    }
}

#[tokio::test]
async fn price_list_chain_failure_is_503_not_500() {
    for path in ["/v1/prices", "/v1/prices?block=3"] {
        let (status, body) = get(path, &Registry::new()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(body["code"], "chain_unavailable", "{path}");
    }
}

#[tokio::test]
async fn refresh_validates_before_touching_nats() {
    let (status, body) = post("/v1/prices/btc-usd/refresh", "").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_pair"))
    );
    let (status, body) = post("/v1/prices/DOGE-USD/refresh", "").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_pair"))
    );
    for bad in ["not json", "[1]", "\"x\"", "{"] {
        let (status, body) = post("/v1/prices/BTC-USD/refresh", bad).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_body")),
            "{bad}"
        );
    }
    // Well-formed, but this state has no NATS: 503 with a code, not a 500.
    for ok in ["", "  ", "{}"] {
        let (status, body) = post("/v1/prices/BTC-USD/refresh", ok).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("bus_unavailable")),
            "{ok:?}"
        );
    }
    // Wrong method on an existing path is a 405, not a 500.
    let (status, _) = get("/v1/prices/BTC-USD/refresh", &Registry::new()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn readyz_names_every_failing_check() {
    let (status, body) = get("/readyz", &Registry::new()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "not_ready");
    assert_eq!(body["checks"]["nats"]["ok"], false);
    assert_eq!(body["checks"]["chain"]["ok"], false);
    assert_eq!(body["checks"]["feeds"]["ok"], false);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("nats: not configured") && message.contains("chain:"),
        "{message}"
    );
}

#[tokio::test]
async fn submissions_validate_ids_and_parameters() {
    let (status, body) = get("/v1/submissions", &Registry::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["submissions"], serde_json::json!([]));
    assert_eq!(body["next_cursor"], Value::Null);
    let (status, body) = get("/v1/submissions/1795295970219-0a1b2c3d", &Registry::new()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_submission"))
    );
    let (status, body) = get("/v1/submissions/not-an-id", &Registry::new()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_submission_id"))
    );
    for q in [
        "status=done",
        "limit=0",
        "limit=501",
        "pair=btc",
        "cursor=x",
        "from=-1",
        "sort=asc",
    ] {
        let (status, body) = get(&format!("/v1/submissions?{q}"), &Registry::new()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_parameter")),
            "{q}"
        );
    }
    // `from` after `to` is schema-valid and selects nothing.
    let (status, body) = get("/v1/submissions?from=5&to=4", &Registry::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["submissions"], serde_json::json!([]));
}

#[tokio::test]
async fn admin_retry_requires_the_bearer_token() {
    let path = "/v1/admin/submissions/1795295970219-0a1b2c3d/retry";
    let send_with = |auth: Option<&'static str>| async move {
        let mut request = Request::post(path);
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        send(request.body(Body::empty()).unwrap(), &Registry::new()).await
    };
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("t0ken"),
        Some("Basic t0ken"),
        Some("Bearer "),
    ] {
        let (status, body) = send_with(auth).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized")),
            "{auth:?}"
        );
    }
    // With the token, the request reaches the records: unknown id is a 404.
    let (status, body) = send_with(Some("Bearer t0ken")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_submission"))
    );
    let (status, body) = send(
        Request::post("/v1/admin/submissions/nope/retry")
            .header("authorization", "Bearer t0ken")
            .body(Body::empty())
            .unwrap(),
        &Registry::new(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_submission_id"))
    );
}

async fn send_to(
    state: AppState,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = router(state).oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    if headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
    {
        return (status, headers, Value::Null); // a stream never ends by itself
    }
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let (status, doc) = get("/openapi.json", &Registry::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12, "{paths:?}");
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let uri = path
                .replace("{pair}", "BTC-USD")
                .replace("{id}", "1795295970219-0a1b2c3d");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let (status, _, body) = send_to(state(&Registry::new()), request).await;
            assert!(
                body["code"] != "not_found" && body["code"] != "method_not_allowed",
                "{method} {uri} is documented but not routed: {status} {body}"
            );
        }
    }
}

#[tokio::test]
async fn api_keys_guard_client_endpoints_only() {
    let keyed = || {
        let mut s = state(&Registry::new());
        s.api_keys = oracle_bff::guard::ApiKeys::new(["client-key"]);
        s
    };
    let req = |key: Option<&str>, path: &str| {
        let mut r = Request::get(path);
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        r.body(Body::empty()).unwrap()
    };
    // The latest price runs the guard inline (no layer): the same answers.
    for path in [
        "/v1/feeds",
        "/v1/prices/BTC-USD",
        "/v1/reports/BTC-USD/latest",
    ] {
        let (status, _, body) = send_to(keyed(), req(None, path)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("missing_api_key")),
            "{path}"
        );
        let (status, _, body) = send_to(keyed(), req(Some("other"), path)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_api_key")),
            "{path}"
        );
    }
    let (status, _, _) = send_to(keyed(), req(Some("client-key"), "/v1/feeds")).await;
    assert_eq!(status, StatusCode::OK);
    for open in ["/healthz", "/openapi.json"] {
        let (status, _, _) = send_to(keyed(), req(None, open)).await;
        assert_eq!(status, StatusCode::OK, "{open}");
    }
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let mut s = state(&Registry::new());
    s.limiter = Some(oracle_bff::guard::Limiter::new(
        oracle_common::config::RateLimit {
            requests: 2,
            per: std::time::Duration::from_secs(60),
        },
    ));
    let req = || Request::get("/v1/feeds").body(Body::empty()).unwrap();
    for _ in 0..2 {
        let (status, _, _) = send_to(s.clone(), req()).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, body) = send_to(s.clone(), req()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    // Liveness is never rate limited.
    let (status, _, _) = send_to(s, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let mut s = state(&Registry::new());
    s.cors_origins = Arc::new(vec!["https://app.example".into()]);
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/v1/prices/BTC-USD")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .unwrap()
    };
    let (_, headers, _) = send_to(s.clone(), preflight("https://app.example")).await;
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    let (_, headers, _) = send_to(s, preflight("https://evil.example")).await;
    assert!(headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let big = "x".repeat(4096);
    let (status, _, body) = send_to(
        state(&Registry::new()),
        Request::post("/v1/prices/BTC-USD/refresh")
            .body(Body::from(big))
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
}

#[tokio::test]
async fn a_node_that_never_answers_is_a_prompt_503_chain_unavailable_not_a_hang() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut s = state(&Registry::new());
    let feed = s
        .chains
        .default_chain()
        .feeds
        .values()
        .next()
        .unwrap()
        .clone();
    s.chains = common::chains(vec![common::view(
        "local",
        31337,
        &format!("http://{addr}"),
        feed,
    )]);
    // The chain timeout answers, long before the 5 s response deadline.
    s.chain_timeout = std::time::Duration::from_millis(300);
    for path in [
        "/v1/prices",
        "/v1/prices/BTC-USD",
        "/v1/prices/BTC-USD?block=3",
        "/v1/prices/BTC-USD/history",
    ] {
        let started = std::time::Instant::now();
        let (status, _, body) =
            send_to(s.clone(), Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("chain_unavailable")),
            "{path}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{path}"
        );
    }
}

#[tokio::test]
async fn admin_without_credentials_is_401_even_when_disabled_and_is_rate_limited() {
    let path = "/v1/admin/submissions/1795295970219-0a1b2c3d/retry";
    let mut disabled = state(&Registry::new());
    disabled.admin_token = None;
    let (status, _, body) = send_to(
        disabled.clone(),
        Request::post(path).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, _, body) = send_to(
        disabled,
        Request::post(path)
            .header("authorization", "Bearer x")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_disabled"))
    );
    // Guessing the token is slow: the limit applies before the check.
    let mut s = state(&Registry::new());
    s.admin_limiter = oracle_bff::guard::Limiter::new(oracle_common::config::RateLimit {
        requests: 2,
        per: std::time::Duration::from_secs(60),
    });
    for _ in 0..2 {
        let (status, _, _) = send_to(
            s.clone(),
            Request::post(path)
                .header("authorization", "Bearer guess")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) = send_to(
        s,
        Request::post(path)
            .header("authorization", "Bearer t0ken")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn without_configured_keys_a_made_up_key_gets_no_fresh_bucket() {
    let mut s = state(&Registry::new());
    s.limiter = Some(oracle_bff::guard::Limiter::new(
        oracle_common::config::RateLimit {
            requests: 1,
            per: std::time::Duration::from_secs(60),
        },
    ));
    let with_key = |k: &str| {
        Request::get("/v1/feeds")
            .header("x-api-key", k)
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, _) = send_to(s.clone(), with_key("first")).await;
    assert_eq!(status, StatusCode::OK);
    // Same client address, another invented key: the same bucket.
    let (status, _, body) = send_to(s.clone(), with_key("second")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    let limited = |trusted: &[&str]| {
        let mut s = state(&Registry::new());
        s.limiter = Some(oracle_bff::guard::Limiter::new(
            oracle_common::config::RateLimit {
                requests: 1,
                per: std::time::Duration::from_secs(60),
            },
        ));
        s.trusted_proxies = oracle_bff::guard::TrustedProxies::new(trusted.iter().copied());
        s
    };
    let from = |client: &str| {
        let mut r = Request::get("/v1/feeds")
            .header("x-forwarded-for", client)
            .body(Body::empty())
            .unwrap();
        // The peer: 10.0.0.1, a proxy when trusted.
        r.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [10, 0, 0, 1],
                40000,
            ))));
        r
    };
    // Untrusted peer: invented forwarded addresses change nothing.
    let s = limited(&[]);
    assert_eq!(send_to(s.clone(), from("1.1.1.1")).await.0, StatusCode::OK);
    assert_eq!(
        send_to(s, from("2.2.2.2")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Behind a trusted proxy, each client has its own bucket.
    let s = limited(&["10.0.0.0/8"]);
    assert_eq!(send_to(s.clone(), from("1.1.1.1")).await.0, StatusCode::OK);
    assert_eq!(send_to(s.clone(), from("2.2.2.2")).await.0, StatusCode::OK);
    assert_eq!(
        send_to(s, from("1.1.1.1")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn streams_are_capped_per_client_and_in_all_with_retry_after() {
    let mut s = state(&Registry::new());
    s.streams = oracle_bff::guard::StreamSlots::new(2, 1);
    let open = |s: AppState, who: [u8; 4]| async move {
        let mut r = Request::get("/v1/stream").body(Body::empty()).unwrap();
        r.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                who, 1,
            ))));
        router(s).oneshot(r).await.unwrap()
    };
    let first = open(s.clone(), [1, 1, 1, 1]).await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = open(s.clone(), [1, 1, 1, 1]).await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(again.headers().contains_key("retry-after"));
    let second = open(s.clone(), [2, 2, 2, 2]).await;
    assert_eq!(second.status(), StatusCode::OK);
    let third = open(s.clone(), [3, 3, 3, 3]).await;
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(third.headers().contains_key("retry-after"));
    // A closed stream gives its slot back (its task sees the client go).
    drop(first);
    let mut reopened = None;
    for _ in 0..100 {
        let r = open(s.clone(), [3, 3, 3, 3]).await;
        if r.status() == StatusCode::OK {
            reopened = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "the slot was not given back");
    drop(second);
}

#[tokio::test]
async fn metrics_are_not_on_the_public_listener_and_the_page_is() {
    let (status, _) = get("/metrics", &Registry::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (path, kind) in [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let (status, headers, _) = send_to(
            state(&Registry::new()),
            Request::get(path).body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert!(headers.contains_key("content-security-policy"), "{path}");
    }
    let (status, _) = get("/assets/../Cargo.toml", &Registry::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_served_chain_is_listed_and_chosen_by_name() {
    let mut s = state(&Registry::new());
    let feed = s
        .chains
        .default_chain()
        .feeds
        .values()
        .next()
        .unwrap()
        .clone();
    let mut slow_feed = feed.clone();
    slow_feed.heartbeat = std::time::Duration::from_secs(600);
    s.chains = common::chains(vec![
        common::view("local", 31337, "http://127.0.0.1:9", feed),
        common::view("slow", 31338, "http://127.0.0.1:9", slow_feed),
    ]);
    let get = |path: &str| {
        let s = s.clone();
        let path = path.to_owned();
        async move {
            let (status, _, body) =
                send_to(s, Request::get(&path).body(Body::empty()).unwrap()).await;
            (status, body)
        }
    };

    let (status, body) = get("/v1/chains").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let chains = body["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 2);
    assert_eq!(chains[0]["name"], "local");
    assert_eq!(chains[0]["default"], true);
    assert_eq!(chains[1]["name"], "slow");
    assert_eq!(chains[1]["default"], false);
    assert_eq!(chains[1]["chain_id"], 31338);
    // Nothing answers at port 9: never in step, heads by polling.
    assert_eq!(chains[1]["state"], "down");
    assert_eq!(chains[1]["head"], Value::Null);
    assert_eq!(chains[1]["heads_via"], "polling");

    // The chain's own policy and id.
    let (status, body) = get("/v1/feeds?chain=slow").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["chain"], "slow");
    assert_eq!(body["chain_id"], 31338);
    assert_eq!(body["feeds"][0]["heartbeat_s"], 600);
    let (_, body) = get("/v1/feeds").await;
    assert_eq!(body["chain"], "local");
    assert_eq!(body["feeds"][0]["heartbeat_s"], 60);

    // An unserved chain is a 404 naming the served ones, on every route.
    for path in [
        "/v1/prices/BTC-USD?chain=mars",
        "/v1/prices?chain=mars",
        "/v1/prices/BTC-USD/history?chain=mars",
        "/v1/feeds?chain=mars",
        "/v1/reports/BTC-USD/latest?chain=mars",
        "/v1/stream?chain=mars",
        "/v1/submissions?chain=mars",
    ] {
        let (status, body) = get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], "unknown_chain", "{path}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("local, slow"), "{path}: {message}");
    }
    // A served one is read there (nothing answers: chain_unavailable, not 404).
    let (status, body) = get("/v1/prices/BTC-USD?chain=slow").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "chain_unavailable");
}

#[tokio::test]
async fn a_wrong_method_on_the_price_route_is_a_json_405() {
    // The latest price is routed apart (no layers); its 405 must still be the
    // API's JSON error, like every other route's.
    for path in ["/v1/prices/BTC-USD", "/v1/prices/v1", "/v1/feeds"] {
        let (status, body) = send(
            Request::post(path).body(Body::empty()).unwrap(),
            &Registry::new(),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(body["code"], "method_not_allowed", "{path}: {body}");
    }
}
