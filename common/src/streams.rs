//! JetStream stream set-up shared by the services: each creates the streams it
//! uses (idempotently) so that start-up order does not matter, and brings an
//! existing stream's subjects, direct-get setting and replicas (`nats.replicas`)
//! up to date; a replica count the cluster cannot hold is a start-up error
//! that says so. What a cluster answers while it elects leaders or misses a
//! server (timeouts, "JetStream temporarily unavailable") is retried for up
//! to [`STARTUP_PATIENCE`]: a service started beside a forming cluster, or
//! during a failover, waits instead of exiting.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamError, CreateStreamErrorKind};
use async_nats::jetstream::{self, stream};

use crate::config::NatsConfig;
use crate::wire;

/// How long start-up retries JetStream calls that failed for a reason a
/// recovering cluster gives.
pub const STARTUP_PATIENCE: Duration = Duration::from_secs(60);

/// Failure to create or look up a stream.
#[derive(Debug, thiserror::Error)]
#[error("cannot create or open stream {stream}: {message}")]
pub struct StreamError {
    /// The stream.
    pub stream: &'static str,
    /// What NATS said.
    pub message: String,
}

/// Whether a JetStream API error code is one a cluster answers while a
/// leader is being elected or a server is missing: worth asking again.
pub fn is_transient_code(code: u64) -> bool {
    use jetstream::ErrorCode as C;
    [
        C::CLUSTER_NOT_AVAILABLE,
        C::CLUSTER_NOT_LEADER,
        C::CLUSTER_INCOMPLETE,
        C::CLUSTER_NOT_ACTIVE,
        C::CLUSTER_NOT_ASSIGNED,
        C::CLUSTER_SERVER_MEMBER_CHANGE_INFLIGHT,
    ]
    .iter()
    .any(|c| c.0 == code)
}

/// Whether a JetStream API error code says the cluster cannot place or keep
/// the replicas asked for.
fn is_replica_code(code: u64) -> bool {
    use jetstream::ErrorCode as C;
    [
        C::INSUFFICIENT_RESOURCES,
        C::STREAM_REPLICAS_NOT_SUPPORTED,
        C::STREAM_REPLICAS_NOT_UPDATABLE,
        C::CLUSTER_NO_PEERS,
    ]
    .iter()
    .any(|c| c.0 == code)
}

/// Whether a failed stream creation or update is worth retrying.
pub fn create_is_transient(e: &CreateStreamError) -> bool {
    match e.kind() {
        CreateStreamErrorKind::TimedOut
        | CreateStreamErrorKind::JetStreamUnavailable
        | CreateStreamErrorKind::Response => true,
        CreateStreamErrorKind::JetStream(j) => is_transient_code(j.error_code().0),
        _ => false,
    }
}

/// Runs `op` until it succeeds, fails for a reason `transient` does not
/// accept, or [`STARTUP_PATIENCE`] has passed (then the last error); waits
/// 250 ms, doubling up to 2 s, between attempts, and logs each retry.
pub async fn retrying<T, E, F, Fut>(
    what: &str,
    mut op: F,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + STARTUP_PATIENCE;
    let mut wait = Duration::from_millis(250);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if transient(&e) && tokio::time::Instant::now() + wait < deadline => {
                tracing::warn!(what, error = %e, retry_in = ?wait, "JetStream not available yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

async fn ensure(
    js: &jetstream::Context,
    name: &'static str,
    subjects: &[&str],
    max_age: Duration,
    allow_direct: bool,
    config: &NatsConfig,
) -> Result<stream::Stream, StreamError> {
    let replicas = config.replicas;
    let failed = |e: &CreateStreamError| {
        let replica_problem = matches!(e.kind(), CreateStreamErrorKind::JetStream(j)
            if is_replica_code(j.error_code().0));
        StreamError {
            stream: name,
            message: if replica_problem {
                format!(
                    "the servers cannot keep it at {replicas} replica(s): {e} (nats.replicas \
                     must not exceed the number of JetStream servers in the cluster; 1 on a \
                     single server)"
                )
            } else {
                e.to_string()
            },
        }
    };
    let wanted: Vec<String> = subjects.iter().map(|s| (*s).to_owned()).collect();
    let stream = retrying(
        name,
        || {
            js.get_or_create_stream(stream::Config {
                name: name.to_owned(),
                subjects: wanted.clone(),
                max_age,
                duplicate_window: config.duplicate_window,
                num_replicas: replicas,
                storage: stream::StorageType::File,
                allow_direct,
                ..Default::default()
            })
        },
        create_is_transient,
    )
    .await
    .map_err(|e| failed(&e))?;
    let current = &stream.cached_info().config;
    if current.subjects != wanted
        || current.allow_direct != allow_direct
        || current.num_replicas != replicas
    {
        // A stream created by an older version or another configuration:
        // same data, current subjects and replicas (the servers copy the data
        // to the new peers).
        if current.num_replicas != replicas {
            tracing::warn!(
                stream = name,
                from = current.num_replicas,
                to = replicas,
                "changing the stream's replicas"
            );
        }
        let mut updated = current.clone();
        updated.subjects = wanted;
        updated.allow_direct = allow_direct;
        updated.num_replicas = replicas;
        retrying(
            name,
            || js.update_stream(updated.clone()),
            create_is_transient,
        )
        .await
        .map_err(|e| failed(&e))?;
        return retrying(
            name,
            || js.get_stream(name),
            |e| matches!(e.kind(), jetstream::context::GetStreamErrorKind::Request),
        )
        .await
        .map_err(|e| StreamError {
            stream: name,
            message: e.to_string(),
        });
    }
    Ok(stream)
}

/// Creates (or opens) `ORACLE_OBS` with deduplication on `Nats-Msg-Id` and
/// direct gets (aggregator nodes load the observations a proposal cites by
/// sequence from any replica).
pub async fn ensure_obs_stream(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<stream::Stream, StreamError> {
    ensure(
        js,
        wire::OBS_STREAM,
        &[wire::OBS_SUBJECTS],
        config.obs_max_age,
        true,
        config,
    )
    .await
}

/// Creates (or opens) `ORACLE_REPORTS`: reports and the nodes' refusals.
pub async fn ensure_reports_stream(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<stream::Stream, StreamError> {
    ensure(
        js,
        wire::REPORTS_STREAM,
        &[wire::REPORTS_SUBJECTS, wire::REFUSALS_SUBJECTS],
        config.obs_max_age,
        false,
        config,
    )
    .await
}

/// Creates (or opens) `ORACLE_SUBMISSIONS`, the record of every transaction:
/// kept without age limit.
pub async fn ensure_submissions_stream(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<stream::Stream, StreamError> {
    ensure(
        js,
        wire::SUBMISSIONS_STREAM,
        &[wire::SUBMISSIONS_SUBJECTS],
        std::time::Duration::ZERO,
        false,
        config,
    )
    .await
}

/// Reads every message an ephemeral pull consumer delivers until it has no
/// more (a short fetch comes back empty).
pub async fn drain(
    consumer: &jetstream::consumer::PullConsumer,
) -> Result<Vec<jetstream::Message>, String> {
    use futures::StreamExt;
    let mut out = Vec::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(5_000)
            .expires(std::time::Duration::from_millis(300))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let mut n = 0;
        while let Some(msg) = batch.next().await {
            out.push(msg.map_err(|e| e.to_string())?);
            n += 1;
        }
        if n == 0 {
            return Ok(out);
        }
    }
}
