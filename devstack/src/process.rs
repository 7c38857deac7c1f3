//! Child processes of the local stack: started with their output in a log
//! file, killed if this process dies (Linux `PR_SET_PDEATHSIG`), asked to stop
//! with SIGTERM and killed after a grace period, and killed on drop; frozen
//! and thawed (SIGSTOP/SIGCONT) for tests of a hung peer.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A running child process.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Child,
    log: Option<PathBuf>,
}

/// How a child's output is handled.
#[derive(Debug, Clone)]
pub enum Output {
    /// Appended to this file.
    File(PathBuf),
    /// Shared with this process's stdout/stderr.
    Inherit,
}

impl ChildProcess {
    /// Starts `program` with `args`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        output: Output,
    ) -> std::io::Result<Self> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let log = match output {
            Output::File(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                cmd.stdout(file.try_clone()?).stderr(file);
                Some(path)
            }
            Output::Inherit => None,
        };
        die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot start {name} ({}): {e}", program.display()),
            )
        })?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// The process id, while running.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// The log file, if output goes to one.
    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let Some(path) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The name it was started under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Fails if the process has exited.
    pub fn check_running(&mut self) -> std::io::Result<()> {
        match self.child.try_wait()? {
            Some(status) => Err(std::io::Error::other(format!(
                "{} exited ({status}); log:\n{}",
                self.name,
                self.log_tail()
            ))),
            None => Ok(()),
        }
    }

    /// Kills the process at once (SIGKILL) and reaps it: a crash.
    pub async fn kill_now(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Freezes the process (SIGSTOP) without closing its sockets: a hung
    /// server, as a stalled VM or a long GC pause looks to its clients.
    pub fn pause(&self) {
        if let Some(pid) = self.child.id() {
            send_signal(pid, Signal::Stop);
        }
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        if let Some(pid) = self.child.id() {
            send_signal(pid, Signal::Continue);
        }
    }

    /// Sends SIGTERM, waits up to `grace`, then kills.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(pid) = self.child.id() {
            send_signal(pid, Signal::Continue);
            send_signal(pid, Signal::Terminate);
            if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
                return;
            }
            tracing::warn!(name = %self.name, "did not stop within {grace:?}; killing");
        }
        let _ = self.child.kill().await;
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the child's own state;
    // nothing else runs between fork and exec here.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

#[derive(Debug, Clone, Copy)]
enum Signal {
    Terminate,
    Stop,
    Continue,
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn send_signal(pid: u32, signal: Signal) {
    let sig = match signal {
        Signal::Terminate => libc::SIGTERM,
        Signal::Stop => libc::SIGSTOP,
        Signal::Continue => libc::SIGCONT,
    };
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

#[cfg(not(unix))]
fn send_signal(_pid: u32, _signal: Signal) {}
