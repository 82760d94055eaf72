//! The article's two servers on the wire (SPEC §3.2, §3.3): no lines, no framing; each `recv()`
//! is one message, as in the Python originals.

use super::{CONNECTED, EXIT};

/// The threaded server's greeting.
pub const ACK_GREETING: &str = "Hello World!";

/// Which of the article's servers is spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArticleMode {
    /// Its `server.py`: `连接成功!`, then `第N条信息:` + each read echoed back.
    Echo,
    /// Its threaded server: `Hello World!`, then `<1..=1000>:ACK!` per read.
    Ack,
}

impl ArticleMode {
    /// What the server sends on accept, without a newline.
    pub fn greeting(self) -> &'static [u8] {
        match self {
            Self::Echo => CONNECTED.as_bytes(),
            Self::Ack => ACK_GREETING.as_bytes(),
        }
    }

    /// Writes the answer to the `count`th read (from 1), `data`, into `out`.
    pub fn reply(self, count: u64, data: &[u8], out: &mut Vec<u8>) {
        out.clear();
        match self {
            Self::Echo => {
                out.extend_from_slice(format!("第{count}条信息:").as_bytes());
                out.extend_from_slice(data);
            }
            Self::Ack => {
                out.extend_from_slice(format!("{}:ACK!", fastrand::u32(1..=1000)).as_bytes());
            }
        }
    }
}

/// The article's test `data == b'exit'`, also accepting the line endings `nc` and telnet add.
pub fn is_exit_read(data: &[u8]) -> bool {
    data.strip_suffix(b"\n")
        .map(|d| d.strip_suffix(b"\r").unwrap_or(d))
        .unwrap_or(data)
        == EXIT.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_is_the_whole_read_with_an_optional_line_ending() {
        for yes in [&b"exit"[..], b"exit\n", b"exit\r\n"] {
            assert!(is_exit_read(yes), "{yes:?}");
        }
        for no in [&b"exit\r"[..], b"exit\n\n", b" exit", b"exits", b"EXIT"] {
            assert!(!is_exit_read(no), "{no:?}");
        }
    }

    #[test]
    fn replies_are_the_articles() {
        let mut out = Vec::new();
        ArticleMode::Echo.reply(2, "你好".as_bytes(), &mut out);
        assert_eq!(String::from_utf8(out.clone()).unwrap(), "第2条信息:你好");
        ArticleMode::Ack.reply(1, b"x", &mut out);
        let text = String::from_utf8(out).unwrap();
        let n: u32 = text.strip_suffix(":ACK!").unwrap().parse().unwrap();
        assert!((1..=1000).contains(&n));
    }
}
