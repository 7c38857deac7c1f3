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

/// Creates (or opens) `ORACLE_OBS` with deduplication on `Nats-Msg-Id`.
pub async fn ensure_obs_stream(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<stream::Stream, StreamError> {
    js.get_or_create_stream(stream::Config {
        name: wire::OBS_STREAM.to_owned(),
        subjects: vec![wire::OBS_SUBJECTS.to_owned()],
        max_age: config.obs_max_age,
        duplicate_window: config.duplicate_window,
        num_replicas: config.replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| StreamError {
        stream: wire::OBS_STREAM,
        message: e.to_string(),
    })
}

/// Creates (or opens) `ORACLE_REPORTS`.
pub async fn ensure_reports_stream(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<stream::Stream, StreamError> {
    js.get_or_create_stream(stream::Config {
        name: wire::REPORTS_STREAM.to_owned(),
        subjects: vec![wire::REPORTS_SUBJECTS.to_owned()],
        max_age: config.obs_max_age,
        num_replicas: config.replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| StreamError {
        stream: wire::REPORTS_STREAM,
        message: e.to_string(),
    })
}

/// Creates (or opens) `ORACLE_SUBMISSIONS`, the record of every transaction:
/// kept without age limit.
pub async fn ensure_submissions_stream(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<stream::Stream, StreamError> {
    js.get_or_create_stream(stream::Config {
        name: wire::SUBMISSIONS_STREAM.to_owned(),
        subjects: vec![wire::SUBMISSIONS_SUBJECTS.to_owned()],
        num_replicas: config.replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| StreamError {
        stream: wire::SUBMISSIONS_STREAM,
        message: e.to_string(),
    })
}
