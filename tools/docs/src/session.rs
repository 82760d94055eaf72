//! The sessions the pictures show: the real [`App`], driven as the event loop drives it, with
//! the lines a tcpchat server really writes (built by the protocol's own writer,
//! [`Scoped`]'s `Display`) and the network task's events, at fixed moments. What the app asks
//! to send is answered as the network task would (`Sent` with the bytes on the wire), so the
//! byte counts, the timeline and the reads are the app's own.
//!
//! Nothing here reads a socket, and the clock once: every moment is a fixed offset from the
//! start, the wall clock is fixed, the addresses are fixed, timestamps stay off (a replayed
//! line's time would be shown in the machine's time zone), the language is given (never the
//! machine's locale), so every run draws the same cells.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tcpchat::app::{App, Clock, Effect, Overlay, Role, Settings};
use tcpchat::event_loop::fit;
use tcpchat::i18n::Language;
use tcpchat::net::{Close, NetEvent, Outgoing};
use tcpchat::protocol::{Event, Framing, SaidKind, Scope, Scoped, ServerLine};
use tcpchat::tcp_table::TimeWait;
use tcpchat::tcpinfo::{self, TcpInfo};
use tcpchat::ui;
use tokio::time::Instant;

/// The server's address: the article's, where local mode hosts.
const SERVER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8888));
/// Our end, as if the kernel had picked the port.
const LOCAL: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 51234));

/// A screen as the terminal shows it: its cells and where the caret is, if it shows.
pub struct Screen {
    /// The terminal after one draw.
    pub terminal: Terminal<TestBackend>,
    /// The caret, when the edit box has it.
    pub cursor: Option<(u16, u16)>,
}

/// An [`App`] and the moment it is at.
struct Script {
    app: App,
    start: Instant,
    now: Duration,
}

impl Script {
    /// A client of `SERVER` that asks for the nick `alice`, in local mode (`role`), its own
    /// words in `language`.
    fn new(role: Role, language: Language) -> Self {
        let start = Instant::now();
        let wall = chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|day| day.and_hms_opt(9, 41, 0))
            .unwrap_or_default();
        let settings = Settings {
            target: SERVER.to_string(),
            framing: Framing::Lines,
            nick: Some("alice".into()),
            scrollback: 10_000,
            role,
        };
        let mut app = App::new(settings, Clock::starting(start, wall));
        app.language = language;
        Self {
            app,
            start,
            now: Duration::ZERO,
        }
    }

    /// Moves on to `micros` after the start.
    fn at(&mut self, micros: u64) -> &mut Self {
        self.now = self.now.max(Duration::from_micros(micros));
        self
    }

    fn instant(&self) -> Instant {
        self.start + self.now
    }

    /// The network task reports `event`.
    fn net(&mut self, event: NetEvent) -> &mut Self {
        let effects = self.app.on_net(event, self.instant());
        self.carry_out(effects);
        self
    }

    /// The server's `lines`, arriving in one `recv()`.
    fn server(&mut self, lines: &[Scoped<'_>]) -> &mut Self {
        let mut bytes = bytes::BytesMut::new();
        for line in lines {
            line.write_to(&mut bytes);
        }
        self.net(NetEvent::Received(bytes.freeze()))
    }

    /// The user types `text` and presses Enter.
    fn say(&mut self, text: &str) -> &mut Self {
        self.app.on_paste(text);
        self.key(KeyCode::Enter, KeyModifiers::NONE)
    }

    /// The user presses a key.
    fn key(&mut self, code: KeyCode, modifiers: KeyModifiers) -> &mut Self {
        let effects = self
            .app
            .on_key(KeyEvent::new(code, modifiers), self.instant());
        self.carry_out(effects);
        self
    }

    /// What the event loop would do with `effects`, as far as the app can see it: a line
    /// handed to the network task comes back as written, with its size on the wire.
    fn carry_out(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            let sent = match effect {
                Effect::Send(Outgoing::Line(line)) => NetEvent::Sent {
                    bytes: Framing::Lines.encode(&line).len(),
                    exit: false,
                },
                Effect::Send(Outgoing::Exit(line)) => NetEvent::Sent {
                    bytes: Framing::Lines.encode(&line).len(),
                    exit: true,
                },
                _ => continue,
            };
            let effects = self.app.on_net(sent, self.instant());
            self.carry_out(effects);
        }
    }

    /// The TCP handshake to `SERVER`, `info` read right after it.
    fn connect(&mut self, info: Option<TcpInfo>) -> &mut Self {
        self.net(NetEvent::Resolving {
            target: SERVER.to_string(),
        })
        .at(4)
        .net(NetEvent::Resolved {
            addrs: vec![SERVER],
        })
        .at(6)
        .net(NetEvent::Connecting { addr: SERVER })
        .at(88)
        .net(NetEvent::Connected {
            local: LOCAL,
            peer: SERVER,
            handshake: Duration::from_micros(82),
            info,
        })
    }

    /// The app drawn on a `cols`×`rows` terminal.
    fn draw(mut self, cols: u16, rows: u16) -> anyhow::Result<Screen> {
        fit(&mut self.app, (cols, rows));
        let mut terminal = Terminal::new(TestBackend::new(cols, rows))?;
        terminal.draw(|frame| ui::render(&self.app, frame))?;
        let cursor = match self.app.overlay {
            Overlay::None => Some(terminal.get_cursor_position()?.into()),
            _ => None,
        };
        Ok(Screen { terminal, cursor })
    }
}

fn lobby(line: ServerLine<'_>) -> Scoped<'_> {
    Scoped::lobby(line)
}

fn in_room<'a>(room: &'a str, line: ServerLine<'a>) -> Scoped<'a> {
    Scoped {
        scope: Scope::room(room),
        line,
    }
}

fn said<'a>(nick: &'a str, text: &'a str) -> ServerLine<'a> {
    ServerLine::Message { nick, text }
}

fn event(event: Event<'_>) -> ServerLine<'_> {
    ServerLine::Event(event)
}

/// Alice in local mode, hosting the room: the lobby's history, people talking in 中文 and with
/// emoji, a line that names her, `#rust` joined and left for the lobby while it talks on, a
/// private message, and a line being typed.
pub fn chat(cols: u16, rows: u16, language: Language) -> anyhow::Result<Screen> {
    // 2026-11-30 09:12:05Z and 09:13:40Z, as the store dates replayed lines.
    let (earlier, later) = (1_796_029_925, 1_796_030_020);
    let mut s = Script::new(Role::Hosting, language);
    s.connect(None)
        .at(400)
        .server(&[lobby(event(Event::Greeting {
            nick: "guest-3",
            online: 4,
        }))]);
    s.at(1_300).server(&[
        lobby(event(Event::Renamed {
            old: "guest-3",
            new: "alice",
        })),
        lobby(event(Event::History {
            room: "#lobby",
            count: 4,
            next: 41,
        })),
        lobby(ServerLine::Replayed {
            at: earlier,
            seq: 37,
            kind: SaidKind::Message,
            nick: "bob",
            text: "早上好!有人在吗?",
        }),
        lobby(ServerLine::Replayed {
            at: earlier + 40,
            seq: 38,
            kind: SaidKind::Message,
            nick: "dave",
            text: "早,bob 🙂",
        }),
        lobby(ServerLine::Replayed {
            at: later,
            seq: 39,
            kind: SaidKind::Action,
            nick: "carol",
            text: "is making coffee ☕",
        }),
        lobby(ServerLine::Replayed {
            at: later + 30,
            seq: 40,
            kind: SaidKind::Message,
            nick: "carol",
            text: "rereading the article: socket, connect, 连接成功!",
        }),
        lobby(event(Event::HistoryEnd { room: "#lobby" })),
    ]);
    s.at(2_100_000)
        .say("morning all 👋 trying tcpchat over plain TCP");
    s.at(2_100_300).server(&[lobby(said(
        "alice",
        "morning all 👋 trying tcpchat over plain TCP",
    ))]);
    s.at(5_800_000).server(&[lobby(said(
        "bob",
        "alice: 欢迎!F2 shows your own TCP session, SYN to FIN",
    ))]);
    s.at(9_200_000).server(&[lobby(ServerLine::Action {
        nick: "dave",
        text: "waves 🦀",
    })]);
    s.at(12_000_000).server(&[lobby(said(
        "carol",
        "每条消息都是一行:the protocol is just lines, nc 127.0.0.1 8888 joins too",
    ))]);
    s.at(13_000_000).server(&[lobby(said(
        "dave",
        "and the status bar's in/out is what crossed the socket",
    ))]);
    s.at(13_600_000)
        .server(&[lobby(said("bob", "👍 Alt-I opens it where F2 is taken"))]);
    s.at(15_000_000).say("/join #rust");
    s.at(15_000_400).server(&[
        in_room(
            "#rust",
            event(Event::Joined {
                nick: "alice",
                online: 3,
            }),
        ),
        in_room(
            "#rust",
            event(Event::TopicIs(Some("async, lifetimes & 🦀"))),
        ),
        lobby(event(Event::Talking { room: "#rust" })),
    ]);
    s.at(16_000_000).key(KeyCode::Char('1'), KeyModifiers::ALT);
    s.at(18_500_000).server(&[lobby(event(Event::Joined {
        nick: "erin",
        online: 5,
    }))]);
    s.at(19_000_000).server(&[lobby(said(
        "erin",
        "hi! 第一次来 🙂 is this the article's server?",
    ))]);
    s.at(19_800_000).server(&[lobby(ServerLine::Action {
        nick: "bob",
        text: "points erin at /help",
    })]);
    s.at(21_000_000).server(&[
        in_room("#rust", said("dave", "select! arms must be cancel-safe")),
        in_room("#rust", said("carol", "read_buf is, write_all is not")),
    ]);
    s.at(23_000_000).server(&[Scoped {
        scope: Scope::Private("carol"),
        line: said("carol", "lunch at 12? 🍜"),
    }]);
    s.at(24_000_000)
        .app
        .input
        .insert("yes, and 连接成功! is the greeting");
    s.draw(cols, rows)
}

/// The kernel's figures for a loopback connection at its stages: right after the handshake,
/// after a few lines each way, after our FIN was acknowledged, and at the close.
fn kernel() -> [TcpInfo; 4] {
    let handshake = TcpInfo {
        state: Some(tcpinfo::ESTABLISHED),
        segs_out: Some(2),
        segs_in: Some(1),
        bytes_acked: Some(1),
        bytes_received: Some(0),
        rtt_us: Some(71),
        rttvar_us: Some(35),
        rto_us: Some(201_000),
        cwnd: Some(10),
        snd_mss: Some(32_768),
        retransmits: Some(0),
        unacked: Some(0),
        notsent_bytes: Some(0),
        recv_queue: Some(0),
        send_queue: Some(0),
        ..TcpInfo::default()
    };
    let talking = TcpInfo {
        segs_out: Some(9),
        segs_in: Some(8),
        bytes_acked: Some(58),
        bytes_received: Some(402),
        rtt_us: Some(54),
        rttvar_us: Some(21),
        ..handshake
    };
    // Right after shutdown(WR) on loopback our FIN is usually not acknowledged yet: the
    // server's ACK rides on its goodbye line.
    let fin_sent = TcpInfo {
        state: Some(tcpinfo::FIN_WAIT1),
        segs_out: Some(11),
        segs_in: Some(9),
        bytes_acked: Some(64),
        ..talking
    };
    let closed = TcpInfo {
        state: Some(tcpinfo::CLOSED),
        segs_out: Some(12),
        segs_in: Some(11),
        bytes_received: Some(447),
        ..fin_sent
    };
    [handshake, talking, fin_sent, closed]
}

/// A whole session with the inspector open beside the chat: the handshake, the greeting, a
/// rename, a few lines each way (one of them 中文), then `exit` (Ctrl-D): our FIN, the
/// server's goodbye and FIN, and the session left on screen to be read.
pub fn inspector(cols: u16, rows: u16) -> anyhow::Result<Screen> {
    let [handshake, talking, fin_sent, closed] = kernel();
    let mut s = Script::new(Role::Joined, Language::English);
    s.connect(Some(handshake))
        .key(KeyCode::F(2), KeyModifiers::NONE);
    s.app.on_tcp_info(handshake);
    s.at(350).server(&[lobby(event(Event::Greeting {
        nick: "guest-1",
        online: 3,
    }))]);
    s.at(1_250).server(&[lobby(event(Event::Renamed {
        old: "guest-1",
        new: "alice",
    }))]);
    s.at(3_400_000)
        .server(&[lobby(said("bob", "你好 alice,欢迎!"))]);
    s.at(6_100_000).say("hi bob, watching my own TCP session");
    s.at(6_100_210)
        .server(&[lobby(said("alice", "hi bob, watching my own TCP session"))]);
    s.at(8_700_000)
        .server(&[lobby(said("bob", "看 kernel:rtt is 0.05 ms on loopback"))]);
    s.app.on_tcp_info(talking);
    s.at(12_300_000)
        .key(KeyCode::Char('d'), KeyModifiers::CONTROL);
    s.at(12_300_015)
        .net(NetEvent::FinSent {
            before: Some(tcpinfo::ESTABLISHED),
            info: Some(fin_sent),
        })
        .at(12_300_180)
        .server(&[lobby(event(Event::Bye { nick: "alice" }))])
        .at(12_300_190)
        .net(NetEvent::Closed {
            how: Close::PeerFin,
            info: Some(closed),
            time_wait: Some(TimeWait {
                ours: true,
                theirs: false,
            }),
        });
    s.draw(cols, rows)
}
