//! Real Node neighbours: ioredis and BullMQ from the test package in
//! `tests/node/` (versions pinned by its committed `package-lock.json`,
//! installed by `.ci/run` with `npm ci`).
//!
//! [`node_eval`] runs a few lines of JavaScript with a connected ioredis
//! client (`tests/node/scripts/run.js`) and returns what they printed with
//! `out(value)`, one JSON value a line. [`NodeProcess`] starts a long-lived
//! script (a BullMQ worker, a load seeder) that is killed when dropped.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// `tests/node`, the test package.
pub fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

fn node_command(script: &str, redis_port: u16) -> Command {
    let dir = node_dir();
    assert!(
        dir.join("node_modules/ioredis").is_dir(),
        "the Node test package is not installed: run `npm ci --prefix tests/node` (or .ci/run)"
    );
    let mut command = Command::new("node");
    command
        .arg(dir.join("scripts").join(script))
        .current_dir(&dir)
        .env("REDIS_PORT", redis_port.to_string())
        .stdin(Stdio::null());
    command
}

/// Runs `body` (the inside of an async JS function that sees `redis`, an
/// ioredis client on `127.0.0.1:redis_port`, and `out(value)`) in a fresh
/// Node process, and returns each `out` line parsed as JSON.
///
/// # Panics
/// When Node cannot start or the body throws (its stderr is in the message).
pub fn node_eval(redis_port: u16, body: &str) -> Vec<serde_json::Value> {
    let output = node_command("run.js", redis_port)
        .arg(body)
        .output()
        .expect("node must be installed (run .ci/run)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("node printed one JSON value a line"))
        .collect()
}

/// A long-running Node script of `tests/node/scripts`, killed on drop.
pub struct NodeProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Option<std::io::Lines<BufReader<ChildStdout>>>,
}

impl NodeProcess {
    /// Starts `script` with `REDIS_PORT` and the extra environment `env`.
    pub fn start(script: &str, redis_port: u16, env: &[(&str, &str)]) -> Self {
        let mut command = node_command(script, redis_port);
        command
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = command.spawn().expect("node must be installed");
        let stdout = child.stdout.take().expect("piped stdout");
        Self {
            stdin: child.stdin.take(),
            child,
            lines: Some(BufReader::new(stdout).lines()),
        }
    }

    /// Sends one JSON line to the script's stdin and returns its answer
    /// line. Blocks, like [`NodeProcess::next_json`].
    pub fn request(&mut self, command: &serde_json::Value) -> serde_json::Value {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{command}").expect("write to node's stdin");
        stdin.flush().expect("flush node's stdin");
        self.next_json().expect("node answered before exiting")
    }

    /// The next line the script printed, parsed as JSON; `None` once it has
    /// exited. Blocks: call it from a blocking thread in async tests.
    pub fn next_json(&mut self) -> Option<serde_json::Value> {
        let line = self.lines.as_mut()?.next()?.expect("read node's stdout");
        Some(serde_json::from_str(&line).expect("node printed one JSON value a line"))
    }

    /// Reads the script's lines on a thread of their own from now on, for
    /// async tests: each parsed line arrives on the channel, which closes
    /// when the script exits (or is killed by dropping `self`).
    pub fn lines_to_channel(&mut self) -> tokio::sync::mpsc::UnboundedReceiver<serde_json::Value> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        if let Some(lines) = self.lines.take() {
            std::thread::spawn(move || {
                for line in lines {
                    let Ok(line) = line else { return };
                    let value =
                        serde_json::from_str(&line).expect("node printed one JSON value a line");
                    if tx.send(value).is_err() {
                        return;
                    }
                }
            });
        }
        rx
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
