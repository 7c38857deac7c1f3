//! Following a JetStream stream from a sequence onwards with an ordered
//! consumer, resuming after the last applied message when the consumer or
//! the connection fails. The in-memory indexes of the bff are built this way.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Calls `apply(seq, payload)` for every message of `stream` from the start,
/// in order, until `shutdown`. `last_seq` says where to resume.
pub async fn follow(
    nats: async_nats::Client,
    stream: &'static str,
    shutdown: CancellationToken,
    last_seq: impl Fn() -> u64,
    mut apply: impl FnMut(u64, &[u8]),
) {
    let js = jetstream::new(nats.clone());
    loop {
        let once = async {
            let s = js
                .get_stream(stream)
                .await
                .map_err(|e| format!("stream not available yet: {e}"))?;
            let start = last_seq() + 1;
            let consumer = s
                .create_consumer(consumer::push::OrderedConfig {
                    deliver_subject: nats.new_inbox(),
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: start,
                    },
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
            info!(stream, from_seq = start, "following");
            while let Some(msg) = messages.next().await {
                let msg = msg.map_err(|e| e.to_string())?;
                let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
                apply(seq, &msg.payload);
            }
            Err::<(), String>("the consumer ended".into())
        };
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = once => r,
        };
        if let Err(e) = result {
            warn!(stream, error = %e, "following; retrying in 2 s");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}
