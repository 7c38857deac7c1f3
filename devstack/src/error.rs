//! What can go wrong starting the local stack, and the waiting helpers every
//! part of it uses: poll until ready with a deadline, never a fixed sleep.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::process::ChildProcess;
use crate::tools;

/// Why the stack (or a part of it) could not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A tool is not installed.
    #[error(transparent)]
    Tool(#[from] tools::MissingTool),
    /// A process or socket failed.
    #[error("{0}")]
    Io(String),
    /// Something did not become ready in time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// The contract could not be deployed.
    #[error(transparent)]
    Deploy(#[from] oracle_deploy::DeployError),
    /// The configuration does not fit the local stack.
    #[error("config: {0}")]
    Config(String),
}

/// Maps an I/O error to [`StackError::Io`] with what was being done.
pub(crate) fn io(context: &str) -> impl FnOnce(std::io::Error) -> StackError + '_ {
    move |e| StackError::Io(format!("{context}: {e}"))
}

/// Polls `check` every 100 ms until it yields a value or `timeout` passes.
pub async fn eventually<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut check: F,
) -> Result<T, StackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(StackError::Timeout(timeout, what.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` until it yields a value, failing early (with the log's tail)
/// if `child` exits, or after 30 s.
pub(crate) async fn wait_ready<F, Fut, T>(
    child: &mut ChildProcess,
    name: &str,
    mut check: F,
) -> Result<T, StackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let timeout = Duration::from_secs(30);
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        child.check_running().map_err(io(name))?;
        if Instant::now() >= deadline {
            return Err(StackError::Timeout(
                timeout,
                format!("{name}; log:\n{}", child.log_tail()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The host and port of `url` (the key names it in errors).
pub(crate) fn port_of(url: &str, key: &str) -> Result<(String, u16), StackError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| StackError::Config(format!("{key}: {url:?} is not a URL")))?;
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| StackError::Config(format!("{key}: {url:?} has no port")))?;
    Ok((host, port))
}
