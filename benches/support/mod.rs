//! What the client benchmarks share: a deterministic, realistic chat history and the way it
//! reaches the client — as the server's bytes, cut into reads the size the network task gets.
//!
//! The mix is what a busy room sends: mostly `<nick> text` of varying length, some of it
//! Chinese or with emoji (ZWJ families, flags, skin tones), about 6% long enough to wrap at
//! 200 columns, `* ` events (joins, leaves, renames, `/me`) and a few `! ` errors. Lines
//! average about 87 bytes, so an 8 KiB read holds about 90 of them. Reads are cut at
//! exactly [`READ_SIZE`] bytes, wherever that falls: in the middle of a line or of a UTF-8
//! character, as TCP delivers them.

// Each bench uses its own subset of these helpers.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use tcpchat::app::{App, Clock, Role, Settings};
use tcpchat::event_loop::fit;
use tcpchat::net::NetEvent;
use tcpchat::protocol::Framing;
use tokio::time::Instant;

/// Bytes in one read, the network task's buffer size.
pub const READ_SIZE: usize = 8 * 1024;

/// Terminal size every frame is drawn at.
pub const COLS: u16 = 200;
/// Terminal rows every frame is drawn at.
pub const ROWS: u16 = 50;

const NICKS: &[&str] = &[
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "小明",
    "王芳",
    "李雷",
    "韩梅梅",
    "guest-17",
    "guest-204",
    "x_the_long_nickname_24",
];

const WORDS: &[&str] = &[
    "the",
    "a",
    "to",
    "and",
    "is",
    "it",
    "that",
    "server",
    "client",
    "socket",
    "line",
    "read",
    "write",
    "buffer",
    "tcp",
    "handshake",
    "ok",
    "yes",
    "no",
    "maybe",
    "lol",
    "thanks",
    "why",
    "does",
    "this",
    "work",
    "on",
    "my",
    "machine",
    "port",
    "8888",
    "connect",
    "refused",
    "again",
    "python",
    "rust",
    "tokio",
    "select",
    "loop",
    "blocking",
    "thread",
    "kernel",
    "window",
    "ack",
    "fin",
    "reset",
    "latency",
    "bytes",
    "hello",
    "world",
    "exit",
    "recv()",
    "send()",
    "what",
    "about",
    "unicode",
    "utf-8",
    "works",
    "fine",
    "here",
    "see",
    "you",
    "tomorrow",
    "class",
];

const HANZI: &str = "你好世界我们今天学习网络编程服务器客户端连接成功信息发送接收数据\
                     缓冲区线程进程套接字端口地址协议握手关闭重置超时延迟吞吐量测试中文消息";

const PUNCT: &[&str] = &[",", "。", "!", "?", ":", "、"];

const EMOJI: &[&str] = &[
    "👋",
    "😀",
    "🎉",
    "🚀",
    "👍🏽",
    "❤️",
    "🇨🇳",
    "🇩🇪",
    "👨‍👩‍👧",
    "🧑‍💻",
    "🐍",
    "🦀",
    "✅",
    "🔥",
];

/// A deterministic generator of chat lines.
pub struct Chat {
    rng: fastrand::Rng,
}

impl Chat {
    /// The same history for the same seed.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.usize(..from.len())]
    }

    fn words(&mut self, out: &mut String, count: usize) {
        for i in 0..count {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(self.pick(WORDS));
        }
    }

    fn hanzi(&mut self, out: &mut String, count: usize) {
        let chars: Vec<char> = HANZI.chars().collect();
        for i in 0..count {
            out.push(chars[self.rng.usize(..chars.len())]);
            if i % 7 == 6 {
                out.push_str(self.pick(PUNCT));
            }
        }
    }

    /// One line as the server sends it, without its newline.
    pub fn line(&mut self) -> String {
        let nick = self.pick(NICKS);
        let mut out = String::with_capacity(128);
        match self.rng.u32(..100) {
            // Short and medium chat in ASCII.
            0..58 => {
                out.push_str(&format!("<{nick}> "));
                let count = self.rng.usize(2..18);
                self.words(&mut out, count);
            }
            // Chinese.
            58..70 => {
                out.push_str(&format!("<{nick}> "));
                let count = self.rng.usize(4..45);
                self.hanzi(&mut out, count);
            }
            // Emoji among words.
            70..78 => {
                out.push_str(&format!("<{nick}> "));
                for _ in 0..self.rng.usize(1..6) {
                    let count = self.rng.usize(1..5);
                    self.words(&mut out, count);
                    out.push(' ');
                    out.push_str(self.pick(EMOJI));
                    out.push(' ');
                }
            }
            // Long lines that wrap at 200 columns: pasted logs, rants, mixed scripts.
            78..84 => {
                out.push_str(&format!("<{nick}> "));
                let count = self.rng.usize(30..110);
                self.words(&mut out, count);
                if self.rng.bool() {
                    out.push(' ');
                    let count = self.rng.usize(20..90);
                    self.hanzi(&mut out, count);
                }
            }
            // Events.
            84..97 => {
                let other = self.pick(NICKS);
                let online = self.rng.usize(2..120);
                match self.rng.u32(..5) {
                    0 => out.push_str(&format!("*** {nick} joined; {online} online")),
                    1 => out.push_str(&format!("*** {nick} left (exit); {online} online")),
                    2 => out.push_str(&format!("*** {nick} left (quit: bye all); {online} online")),
                    3 => out.push_str(&format!("*** {nick} is now known as {other}_")),
                    _ => {
                        out.push_str(&format!("* {nick} "));
                        let count = self.rng.usize(2..8);
                        self.words(&mut out, count);
                    }
                }
            }
            // Errors.
            _ => out.push_str("! flood limit: your lines are delayed"),
        }
        out
    }

    /// `lines` lines as one byte stream, each ending in `\n`.
    pub fn stream(&mut self, lines: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(lines * 90);
        for _ in 0..lines {
            out.extend_from_slice(self.line().as_bytes());
            out.push(b'\n');
        }
        out
    }
}

/// `stream` cut into reads of [`READ_SIZE`] bytes (the last may be shorter).
pub fn reads(stream: &[u8]) -> Vec<Bytes> {
    stream
        .chunks(READ_SIZE)
        .map(Bytes::copy_from_slice)
        .collect()
}

/// A client at 200×50 keeping `capacity` lines, connected as `alice` (so her lines are drawn
/// as our own), with nothing else in its scrollback yet.
pub fn connected_app(capacity: usize) -> App {
    let settings = Settings {
        target: "127.0.0.1:8888".into(),
        framing: Framing::Lines,
        nick: Some("alice".into()),
        scrollback: capacity,
        role: Role::Joined,
    };
    let mut app = App::new(settings, Clock::now());
    fit(&mut app, (COLS, ROWS));
    net(
        &mut app,
        NetEvent::Connected {
            local: "127.0.0.1:51234".parse().expect("address"),
            peer: "127.0.0.1:8888".parse().expect("address"),
            handshake: Duration::from_micros(80),
            info: None,
        },
    );
    net(
        &mut app,
        NetEvent::Received(Bytes::from_static(
            "*** 连接成功! you are alice; 42 online; /help lists the commands\n".as_bytes(),
        )),
    );
    app
}

/// A network event that happens now, as the network task would stamp it.
pub fn net(app: &mut App, event: NetEvent) {
    app.on_net(event, Instant::now());
}

/// Feeds `lines` generated lines into `app` in [`READ_SIZE`] reads, generating one read's
/// worth at a time so the input is never all resident at once. Returns the bytes fed.
pub fn fill(app: &mut App, chat: &mut Chat, lines: usize) -> usize {
    let mut pending: Vec<u8> = Vec::with_capacity(2 * READ_SIZE);
    let mut total = 0;
    let mut left = lines;
    while left > 0 || !pending.is_empty() {
        while left > 0 && pending.len() < READ_SIZE {
            pending.extend_from_slice(chat.line().as_bytes());
            pending.push(b'\n');
            left -= 1;
        }
        let take = pending.len().min(READ_SIZE);
        let read: Vec<u8> = pending.drain(..take).collect();
        total += read.len();
        net(app, NetEvent::Received(Bytes::from(read)));
    }
    total
}

/// Lines at the end of every full history, the same whatever its size: every frame case then
/// draws the same screen, and what differs between 1k and 100k lines is the history alone.
pub const SAME_TAIL: usize = 200;

/// A client at 200×50 keeping `lines` lines, full; its newest [`SAME_TAIL`] lines are the
/// same for every size.
pub fn full_app(lines: usize) -> App {
    let mut app = connected_app(lines);
    let tail = SAME_TAIL.min(lines);
    fill(&mut app, &mut Chat::new(42), lines - tail);
    fill(&mut app, &mut Chat::new(4242), tail);
    app
}
