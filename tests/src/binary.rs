//! The real `provider` and `relying-party` binaries, built once per test run, for what only a
//! process can show: start-up errors, first-start output, signals, defaults.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

/// Builds the provider binary (a no-op when it is fresh) and returns its path.
pub fn provider_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build("provider")).clone()
}

/// Builds the relying party's binary and returns its path.
pub fn relying_party_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build("relying-party")).clone()
}

fn build(package: &str) -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", package])
        .current_dir(&workspace)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the {package} binary");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    target.join("debug").join(package)
}

/// A command for the provider with a clean environment: only what the test passes, plus PATH.
fn command(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> Command {
    command_for(provider_binary(), args, env, dir)
}

fn command_for(
    binary: PathBuf,
    args: &[&str],
    env: &[(&str, &str)],
    dir: &std::path::Path,
) -> Command {
    let mut command = Command::new(binary);
    command.args(args).current_dir(dir).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

/// Runs the binary to completion, failing the test if it takes longer than `limit`.
pub fn run(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path, limit: Duration) -> Output {
    let mut child = command(args, env, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("provider {args:?} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A provider process whose standard output is collected as it runs; killed when dropped.
pub struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
}

impl Running {
    pub fn spawn(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> Self {
        Self::spawn_binary(provider_binary(), args, env, dir)
    }

    /// Like `spawn`, for another of the workspace's binaries.
    pub fn spawn_binary(
        binary: PathBuf,
        args: &[&str],
        env: &[(&str, &str)],
        dir: &std::path::Path,
    ) -> Self {
        let mut child = command_for(binary, args, env, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let pipe = child.stdout.take().unwrap();
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Self { child, stdout }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `url` answers 200, or fails the test after `limit`.
    pub async fn wait_ready(&mut self, url: &str, limit: Duration) {
        let started = Instant::now();
        let http = reqwest::Client::new();
        loop {
            if let Ok(reply) = http.get(url).send().await
                && reply.status().is_success()
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the process exited early with {status}: {}", self.stdout());
            }
            assert!(
                started.elapsed() < limit,
                "{url} not ready within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit status, failing after `limit`.
    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "provider did not stop within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (free when asked; good enough for a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
