//! Connecting to NATS, and knowing within seconds whether the broker answers.
//!
//! Every service connects with the whole server list of `nats.urls` (plus the
//! servers the cluster advertises), pings every [`PING_INTERVAL`] so that a
//! dead or frozen server is noticed, and reconnects on its own, to another
//! node of the cluster when there is one. The client library's connection
//! state only changes when the TCP connection breaks or pings go unanswered,
//! so a frozen server (SIGSTOP, a stalled VM) would look connected for a
//! long time: [`watch`] probes the broker with a core-NATS request every
//! [`PROBE_INTERVAL`] and publishes the verdict as the readiness check `nats`
//! (gauge `oracle_ready{check="nats"}`, served on `/readyz`).
//!
//! The probe asks a subject nobody serves: a live server answers at once
//! with "no responders", a frozen or unreachable one does not answer.

use std::time::Duration;

use async_nats::{Client, ConnectOptions, RequestErrorKind};
use tokio_util::sync::CancellationToken;

use crate::config::NatsConfig;
use crate::telemetry::Readiness;

/// How often the client pings its server (two unanswered pings drop the
/// connection and start a reconnect).
pub const PING_INTERVAL: Duration = Duration::from_secs(2);
/// Longest wait between two reconnect attempts.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);
/// How often [`watch`] probes the broker.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one probe may wait for the server's answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Consecutive failed probes before the check turns unready (one slow answer
/// on a loaded machine is not an outage).
pub const PROBE_FAILURES: u32 = 2;
/// The subject probed; nothing subscribes to it.
pub const PROBE_SUBJECT: &str = "_oracle.probe";

/// The broker could not be reached at start-up.
#[derive(Debug, thiserror::Error)]
#[error("connecting to NATS at {urls}: {message}")]
pub struct BusError {
    /// The configured servers.
    pub urls: String,
    /// What the client said.
    pub message: String,
}

/// How [`connect`] treats a broker that is down at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initial {
    /// Fail: the service cannot do anything useful without the broker.
    Required,
    /// Return at once and keep trying in the background (the bff serves chain
    /// reads without NATS, and says so on `/readyz`).
    Background,
}

/// Connects to the configured servers as `name` (shown by the server's
/// monitoring, `connz`).
pub async fn connect(
    config: &NatsConfig,
    name: &str,
    initial: Initial,
) -> Result<Client, BusError> {
    let mut options = ConnectOptions::new()
        .name(name)
        .ping_interval(PING_INTERVAL)
        .reconnect_delay_callback(|attempts| {
            // 0, 2, 4, ... ms, at most MAX_RECONNECT_DELAY (the library's
            // default grows to 4 s, slow for a failover).
            let exp = u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX);
            Duration::from_millis(2u64.saturating_pow(exp)).min(MAX_RECONNECT_DELAY)
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                other => tracing::debug!(event = %other, "NATS event"),
            }
        });
    if initial == Initial::Background {
        options = options.retry_on_initial_connect();
    }
    let urls: Vec<&str> = config.urls.iter().map(|u| u.trim()).collect();
    options.connect(urls).await.map_err(|e| BusError {
        urls: config.describe(),
        message: e.to_string(),
    })
}

/// One probe: whether the server the client is on answered in time.
pub async fn probe(client: &Client) -> bool {
    if client.connection_state() != async_nats::connection::State::Connected {
        return false;
    }
    let answer = tokio::time::timeout(
        PROBE_TIMEOUT,
        client.request(PROBE_SUBJECT, bytes::Bytes::new()),
    )
    .await;
    match answer {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => e.kind() == RequestErrorKind::NoResponders,
        Err(_) => false,
    }
}

/// Probes the broker until `shutdown`, setting the readiness check `nats`:
/// unready after [`PROBE_FAILURES`] failed probes in a row, ready again at the
/// first answer. Logs each change.
pub async fn watch(client: Client, readiness: Readiness, shutdown: CancellationToken) {
    let mut failures = 0u32;
    let mut ready: Option<bool> = None;
    loop {
        let ok = tokio::select! {
            ok = probe(&client) => ok,
            () = shutdown.cancelled() => return,
        };
        failures = if ok { 0 } else { failures + 1 };
        let now_ready = ok || (failures < PROBE_FAILURES && ready.unwrap_or(false));
        if ready != Some(now_ready) {
            let server = client.server_info();
            if now_ready {
                tracing::info!(server = %server.server_name, "NATS answers: ready");
            } else if ready.is_none() {
                tracing::info!("waiting for NATS: not ready");
            } else {
                tracing::warn!(server = %server.server_name, failures, "NATS does not answer: not ready");
            }
            ready = Some(now_ready);
        }
        readiness.set("nats", now_ready);
        tokio::select! {
            () = tokio::time::sleep(PROBE_INTERVAL) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// How long [`publish_durably`] keeps trying by default: longer than a
/// stream leader election, short enough that a real outage surfaces.
pub const PUBLISH_PATIENCE: Duration = Duration::from_secs(20);

/// Publishes `payload` on `subject` into JetStream with `msg_id` as its
/// `Nats-Msg-Id` and waits for the PubAck, retrying for up to `patience`
/// what a broker failover answers (no stream leader yet: "no responders",
/// timeouts, a dropped connection, "duplicate message id is in process").
/// The id makes a retry after a lost acknowledgement safe: the stream keeps
/// one copy. Returns the stream sequence.
pub async fn publish_durably(
    js: &async_nats::jetstream::Context,
    subject: String,
    msg_id: &str,
    payload: bytes::Bytes,
    patience: Duration,
) -> Result<u64, String> {
    use async_nats::jetstream::context::PublishErrorKind as K;
    let deadline = tokio::time::Instant::now() + patience;
    let mut wait = Duration::from_millis(50);
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(crate::wire::MSG_ID_HEADER, msg_id);
        let attempt = async {
            js.publish_with_headers(subject.clone(), headers, payload.clone())
                .await?
                .await
        };
        match attempt.await {
            Ok(ack) => return Ok(ack.sequence),
            Err(e) => {
                let permanent = matches!(
                    e.kind(),
                    K::MaxPayloadExceeded | K::WrongLastMessageId | K::WrongLastSequence
                );
                if permanent || tokio::time::Instant::now() + wait >= deadline {
                    return Err(format!("publishing on {subject}: {e}"));
                }
                tracing::warn!(subject = %subject, error = %e, retry_in = ?wait, "publish not acknowledged; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}
