//! The real `ingress` and `workers` binaries as child processes of a test: configured
//! with `APP__...` variables like production ([`platform::settings::env::to_vars`]),
//! their startup lines read from stdout, their JSON log lines kept from stderr, and
//! killed with the test: on drop, and by the kernel when the test's thread ends
//! however it ends (started through util-linux `setpriv --pdeathsig KILL`, which
//! sets `PR_SET_PDEATHSIG` and execs the binary, so no test leaves an orphan).

use platform::Settings;
use rustix::process::{Pid, Signal, kill_process};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Longest wait for a binary's last startup line (it waits for the stores itself).
const STARTUP_WAIT: Duration = Duration::from_secs(60);

/// Log lines kept per child (the newest).
const LOG_LINES_MAX: usize = 50_000;

/// Log lines of a failed test's children shown with its failure.
const TAIL_ON_FAILURE: usize = 40;

/// A folder where a failed test writes every log line its children kept
/// (`<binary>-<pid>.jsonl`), when set.
pub const LOGS_DIR_VAR: &str = "TEST_LOGS_DIR";

/// The stderr lines (JSON logs) of a child so far.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<VecDeque<String>>>);

impl Logs {
    /// Every line kept so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("logs").iter().cloned().collect()
    }

    fn push(&self, line: String) {
        let mut l = self.0.lock().expect("logs");
        if l.len() == LOG_LINES_MAX {
            l.pop_front();
        }
        l.push_back(line);
    }
}

/// A running binary of the workspace.
pub struct ChildProcess {
    name: &'static str,
    child: tokio::process::Child,
    /// Its stdout lines up to and including the one it was waited for.
    pub startup: Vec<String>,
    pub logs: Logs,
}

/// util-linux `setpriv` on `PATH`, if there (without it children still die on drop,
/// but not with a test process that is killed).
fn setpriv() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("setpriv"))
                .find(|p| p.is_file())
        })
        .clone()
}

/// Where cargo put the workspace's binaries: next to the test executable's folder
/// (`target/debug/deps/e2e-...` -> `target/debug`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable's folder");
    deps.parent().unwrap_or(deps).to_path_buf()
}

/// A binary's name and its path, or why it cannot be run.
type Checked = (&'static str, Result<PathBuf, String>);

/// The path of binary `name`, built and not older than any source of the workspace
/// crates it is built from; panics saying how to build it (never runs it stale).
fn binary(name: &'static str) -> PathBuf {
    static CHECKED: OnceLock<Mutex<Vec<Checked>>> = OnceLock::new();
    let checked = CHECKED.get_or_init(Mutex::default);
    let mut checked = checked.lock().expect("checked binaries");
    if !checked.iter().any(|(n, _)| *n == name) {
        let found = check_binary(&bin_dir(), name);
        checked.push((name, found));
    }
    let (_, found) = checked.iter().find(|(n, _)| *n == name).expect("checked");
    found.clone().unwrap_or_else(|e| {
        panic!(
            "{e}: build the binaries first, with the tests' profile and features \
             (scripts/test.sh and `cargo test --workspace` do; alone: \
             `cargo test --workspace --no-run`; a `cargo build` resolves the \
             features without the dev-dependencies and rebuilds most of the tree)"
        )
    })
}

fn check_binary(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let bin = dir.join(name);
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .map_err(|e| format!("no `{name}` binary at {} ({e})", bin.display()))?;
    let newer = sources_of(name).into_iter().find(|src| {
        std::fs::metadata(src)
            .and_then(|m| m.modified())
            .is_ok_and(|changed: SystemTime| changed > built)
    });
    match newer {
        Some(src) => Err(format!(
            "the `{name}` binary at {} is older than {}",
            bin.display(),
            src.display()
        )),
        None => Ok(bin),
    }
}

/// The Rust sources (`src/**/*.rs`) of package `name` and of every workspace crate
/// it depends on, and the compiled-in `config/*.toml`, found through `cargo
/// metadata --no-deps` (none when cargo is not at hand: then nothing is checked).
fn sources_of(name: &str) -> Vec<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let Ok(out) = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    else {
        return vec![];
    };
    let Ok(meta) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return vec![];
    };
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let dir_of = |p: &serde_json::Value| {
        p["manifest_path"]
            .as_str()
            .and_then(|m| Path::new(m).parent())
            .map(Path::to_path_buf)
    };
    let mut todo = vec![name.to_owned()];
    let mut seen: Vec<String> = vec![];
    let mut files = vec![];
    while let Some(n) = todo.pop() {
        if seen.contains(&n) {
            continue;
        }
        seen.push(n.clone());
        let Some(p) = packages.iter().find(|p| p["name"] == n.as_str()) else {
            continue;
        };
        if let Some(dir) = dir_of(p) {
            rust_files(&dir.join("src"), &mut files);
        }
        for d in p["dependencies"].as_array().into_iter().flatten() {
            if d["kind"].is_null() && d["path"].is_string() {
                todo.push(d["name"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    if let Some(root) = meta["workspace_root"].as_str()
        && let Ok(entries) = std::fs::read_dir(Path::new(root).join("config"))
    {
        files.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml")),
        );
    }
    files
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

impl ChildProcess {
    /// Starts binary `name` with `settings` (nothing else of the test's environment)
    /// and waits for its stdout line starting with `ready`.
    pub async fn start(name: &'static str, settings: &Settings, ready: &str) -> Self {
        let mut cmd = match setpriv() {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args(["--pdeathsig", "KILL", "--"]).arg(binary(name));
                c
            }
            None => Command::new(binary(name)),
        };
        cmd.env_clear()
            .env(platform::settings::APP_ENV_VAR, settings.app_env.as_str())
            .env("RUST_BACKTRACE", "1")
            .envs(platform::settings::env::to_vars(settings))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start the {name} binary: {e}"));
        let logs = Logs::default();
        let stderr = child.stderr.take().expect("piped stderr");
        let keep = logs.clone();
        // Read to the end whatever comes (a line that is not UTF-8 is kept lossily):
        // a reader that stopped would block the child once the pipe is full.
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).split(b'\n');
            while let Ok(Some(line)) = lines.next_segment().await {
                keep.push(String::from_utf8_lossy(&line).into_owned());
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut startup = vec![];
        let waited = tokio::time::timeout(STARTUP_WAIT, async {
            while let Ok(Some(line)) = stdout.next_line().await {
                let done = line.starts_with(ready);
                startup.push(line);
                if done {
                    return true;
                }
            }
            false
        })
        .await;
        if waited != Ok(true) {
            let tail = logs.lines();
            let tail = &tail[tail.len().saturating_sub(TAIL_ON_FAILURE)..];
            let exit = child.try_wait().ok().flatten();
            panic!(
                "{name} did not start (exit {exit:?}; stdout {startup:?}); its last log lines:\n{}",
                tail.join("\n")
            );
        }
        // Later stdout lines are not needed, but the pipe must not fill up.
        let mut rest = stdout.into_inner();
        tokio::spawn(async move { drop(tokio::io::copy(&mut rest, &mut tokio::io::sink()).await) });
        Self {
            name,
            child,
            startup,
            logs,
        }
    }

    /// The rest of the startup line that starts with `prefix`.
    pub fn startup_value(&self, prefix: &str) -> Option<&str> {
        self.startup.iter().find_map(|l| l.strip_prefix(prefix))
    }

    /// Sends SIGTERM (a graceful stop, as Kubernetes does) and waits for the exit.
    pub async fn terminate(mut self) -> ExitStatus {
        self.sigterm();
        self.child.wait().await.expect("wait for the child")
    }

    /// Sends SIGTERM and returns at once (the process drains meanwhile).
    pub fn sigterm(&self) {
        if let Some(pid) = self.child.id().and_then(|id| Pid::from_raw(id as i32)) {
            // Our own child, still unreaped: the pid is not anyone else's.
            // (Already gone is fine: a later wait sees its exit.)
            kill_process(pid, Signal::TERM).ok();
        }
    }

    /// Waits for the process to exit by itself (e.g. after [`ChildProcess::sigterm`]).
    pub async fn exited(mut self) -> ExitStatus {
        self.child.wait().await.expect("wait for the child")
    }

    /// SIGKILL: the process dies at once, mid-work (a crash).
    pub async fn kill(mut self) -> ExitStatus {
        drop(self.child.start_kill());
        self.child.wait().await.expect("wait for the child")
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // `kill_on_drop` kills it; a failing test shows what the process logged last.
        if std::thread::panicking() {
            let lines = self.logs.lines();
            let tail = &lines[lines.len().saturating_sub(TAIL_ON_FAILURE)..];
            if !tail.is_empty() {
                eprintln!("--- last log lines of {}:\n{}", self.name, tail.join("\n"));
            }
            // Every line kept, for a failure that the tail does not explain.
            if let Some(dir) = std::env::var_os(LOGS_DIR_VAR) {
                let pid = self.child.id().unwrap_or(0);
                let path = Path::new(&dir).join(format!("{}-{pid}.jsonl", self.name));
                let written = std::fs::create_dir_all(&dir)
                    .and_then(|()| std::fs::write(&path, lines.join("\n")));
                match written {
                    Ok(()) => eprintln!("--- every log line of {}: {}", self.name, path.display()),
                    Err(e) => eprintln!("--- {}: {e}", path.display()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sources_of_ingress_are_its_own_and_its_workspace_dependencies() {
        let files = sources_of("ingress");
        let has = |tail: &str| files.iter().any(|f| f.ends_with(tail));
        assert!(has("ingress/src/main.rs"), "{files:?}");
        assert!(has("platform/src/settings.rs"), "{files:?}");
        assert!(has("contracts/src/lib.rs"), "{files:?}");
        assert!(has("config/default.toml"), "{files:?}");
        // Not what it does not link: the workers, the tests, the stand-ins.
        assert!(!has("workers/src/main.rs"), "{files:?}");
        assert!(!has("tests/src/lib.rs"), "{files:?}");
        assert!(!has("notifier/sink/src/lib.rs"), "{files:?}");
    }
}
