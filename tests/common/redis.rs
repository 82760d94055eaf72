//! A real `redis-server` for the cluster tests: started by the test on a free loopback port
//! with the append-only file on, in a directory of its own; killed (and reaped) on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Reaped;

/// The prerequisite's name, as `TCPCHAT_TEST_SKIP` names it.
pub const PREREQUISITE: &str = "redis";

/// How long a started engine may take to answer `PING`.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// Whether this machine has `redis-server`, or why not.
pub fn available() -> Result<(), String> {
    match Command::new("redis-server").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("redis-server --version failed: {}", out.status)),
        Err(error) => Err(format!(
            "no redis-server on PATH ({error}); apt install redis-server"
        )),
    }
}

/// One engine: its port, its directory, the process while it runs.
pub struct Redis {
    pub port: u16,
    dir: tempfile::TempDir,
    process: Option<Reaped>,
}

impl Redis {
    /// Starts one on a free port, or `None` when the machine lacks redis-server and the tests
    /// that need it are skipped (see `prerequisite`).
    pub fn start() -> Option<Self> {
        if !super::prerequisite(PREREQUISITE, available()) {
            return None;
        }
        let dir = tempfile::tempdir().expect("a directory for the engine");
        // A port found free can be taken before the engine binds it: try another.
        for _ in 0..5 {
            let port = free_port();
            if let Some(process) = spawn(port, dir.path()) {
                return Some(Self {
                    port,
                    dir,
                    process: Some(process),
                });
            }
        }
        panic!("redis-server did not start on any of five free ports");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        drop(self.process.take());
    }

    /// Starts it again on the same port and directory (so from its append-only file).
    pub fn restart(&mut self) {
        self.kill();
        // The port was the engine's; a moment after its death it is free again.
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(process) = spawn(self.port, self.dir.path()) {
                self.process = Some(process);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start again on port {}",
                self.port
            );
        }
    }

    /// Sends one command (inline form) and returns the first line of its reply, for tests that
    /// play a misbehaving node by writing a key themselves.
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(super::DEADLINE))
            .expect("timeout");
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).expect("send to redis");
        let mut reply = Vec::new();
        let mut byte = [0];
        while !reply.ends_with(b"\r\n") {
            stream.read_exact(&mut byte).expect("a reply from redis");
            reply.push(byte[0]);
        }
        String::from_utf8_lossy(&reply).trim_end().to_owned()
    }
}

/// A port nobody listens on just now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// Starts redis-server on `port` with its files in `dir`; `None` if it did not answer PING
/// (the port was taken, say).
fn spawn(port: u16, dir: &std::path::Path) -> Option<Reaped> {
    let log = dir.join("redis.log");
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--appendonly", "yes", "--save", ""])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let mut process = Reaped(child);
    let deadline = Instant::now() + READY_WITHIN;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if process.try_wait().expect("poll redis-server").is_some() {
            return None;
        }
        if pong(addr) {
            return Some(process);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Whether something on `addr` answers PING with PONG (and is not still loading its file).
fn pong(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}
