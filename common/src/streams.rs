//! JetStream stream set-up shared by the services: each creates the streams it
//! uses (idempotently) so that start-up order does not matter.

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
    subjects: &str,
    max_age: std::time::Duration,
    config: &NatsConfig,
) -> Result<stream::Stream, StreamError> {
    js.get_or_create_stream(stream::Config {
        name: name.to_owned(),
        subjects: vec![subjects.to_owned()],
        max_age,
        duplicate_window: config.duplicate_window,
        num_replicas: config.replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| StreamError {
        stream: name,
        message: e.to_string(),
    })
}

/// Creates (or opens) `ORACLE_OBS` with deduplication on `Nats-Msg-Id`.
pub async fn ensure_obs_stream(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<stream::Stream, StreamError> {
    ensure(
        js,
        wire::OBS_STREAM,
        wire::OBS_SUBJECTS,
        config.obs_max_age,
        config,
    )
    .await
}

/// Creates (or opens) `ORACLE_REPORTS`.
pub async fn ensure_reports_stream(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<stream::Stream, StreamError> {
    ensure(
        js,
        wire::REPORTS_STREAM,
        wire::REPORTS_SUBJECTS,
        config.obs_max_age,
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
        wire::SUBMISSIONS_SUBJECTS,
        std::time::Duration::ZERO,
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
