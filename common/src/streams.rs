//! JetStream stream set-up shared by the services: each creates the streams it
//! uses (idempotently) so that start-up order does not matter, and brings an
//! older stream's subjects and direct-get setting up to date.

use async_nats::jetstream::{self, stream};

use crate::config::NatsConfig;
use crate::wire;

/// Failure to create or look up a stream.
#[derive(Debug, thiserror::Error)]
#[error("cannot create or open stream {stream}: {message}")]
pub struct StreamError {
    /// The stream.
    pub stream: &'static str,
    /// What NATS said.
    pub message: String,
}

async fn ensure(
    js: &jetstream::Context,
    name: &'static str,
    subjects: &[&str],
    max_age: std::time::Duration,
    allow_direct: bool,
    config: &NatsConfig,
) -> Result<stream::Stream, StreamError> {
    let failed = |e: &dyn std::fmt::Display| StreamError {
        stream: name,
        message: e.to_string(),
    };
    let wanted: Vec<String> = subjects.iter().map(|s| (*s).to_owned()).collect();
    let stream = js
        .get_or_create_stream(stream::Config {
            name: name.to_owned(),
            subjects: wanted.clone(),
            max_age,
            duplicate_window: config.duplicate_window,
            num_replicas: config.replicas,
            storage: stream::StorageType::File,
            allow_direct,
            ..Default::default()
        })
        .await
        .map_err(|e| failed(&e))?;
    let current = &stream.cached_info().config;
    if current.subjects != wanted || current.allow_direct != allow_direct {
        // A stream created by an older version: same data, current subjects.
        let mut updated = current.clone();
        updated.subjects = wanted;
        updated.allow_direct = allow_direct;
        js.update_stream(updated).await.map_err(|e| failed(&e))?;
        return js.get_stream(name).await.map_err(|e| failed(&e));
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
