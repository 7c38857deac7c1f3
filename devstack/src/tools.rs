//! Finding the external tools (`nats-server`, `anvil`, `prometheus`, and
//! `schemathesis`, the API fuzzer of `tests/api_fuzz.rs`) that
//! `scripts/bootstrap.sh` installs into `.tools/bin`.

use std::path::{Path, PathBuf};

/// The workspace root (where `Cargo.toml` and `.tools/` live).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where `cargo build --workspace --bins` puts the service binaries for
/// tests: `$CARGO_TARGET_DIR/debug`, else `target/debug` of the workspace.
pub fn debug_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("debug")
}

/// A tool could not be found.
#[derive(Debug, thiserror::Error)]
#[error(
    "{tool} not found (looked in ${env}, {tools_dir} and PATH): run scripts/bootstrap.sh to install it"
)]
pub struct MissingTool {
    tool: String,
    env: String,
    tools_dir: String,
}

/// Locates `tool`: `$ORACLE_<TOOL>_BIN`, then `.tools/bin/<tool>`, then `PATH`.
pub fn find(tool: &str) -> Result<PathBuf, MissingTool> {
    let env = format!("ORACLE_{}_BIN", tool.to_ascii_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&env).map(PathBuf::from)
        && p.is_file()
    {
        return Ok(p);
    }
    let tools_dir = workspace_root().join(".tools").join("bin");
    let local = tools_dir.join(tool);
    if local.is_file() {
        return Ok(local);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(tool);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(MissingTool {
        tool: tool.to_owned(),
        env,
        tools_dir: tools_dir.display().to_string(),
    })
}

/// A free TCP port on 127.0.0.1 (bound and released; used at once). Taken
/// below Linux's ephemeral range (32768 and up), where outgoing connections
/// get their local ports, and never handed out twice in this process, so
/// tests running side by side cannot be given the same port.
pub fn free_port() -> std::io::Result<u16> {
    use rand::Rng;
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..200 {
        let port = rand::rng().random_range(20_000..32_000);
        if handed.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed.push(port);
            return Ok(port);
        }
    }
    // Crowded: let the kernel choose.
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port();
    handed.push(port);
    Ok(port)
}
