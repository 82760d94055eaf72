//! What a typed line does, by the buffer on screen. In a room's buffer it goes to that room:
//! the server is told `/switch #room` first whenever it may be talking elsewhere. In a
//! private buffer `@bob` text is sent as `/msg bob TEXT`. A few commands act on the buffers
//! themselves: `/join` of a room already open and `/switch` go to its buffer, `/msg NICK`
//! opens the conversation, `/part` closes a private buffer, and the client's own commands
//! ([`ClientCommand`]) are answered here without sending anything.

use tokio::time::Instant;

use super::buffers::{MAX_BUFFERS, Target, room_key};
use super::client_commands::ClientCommand;
use super::{App, Conn, Effect};
use crate::i18n::tr;
use crate::lab::{self, Action, LabCommand, LabUsage};
use crate::names::{Nick, RoomName};
use crate::net::Outgoing;
use crate::protocol::Command;

impl App {
    /// A line typed in the chat protocol, connected, that is not a client command.
    pub(super) fn typed(&mut self, line: String, now: Instant) -> Vec<Effect> {
        let send = |line: String| Effect::Send(Outgoing::Line(line));
        let current = self.buffers.current();
        let target = current.target;
        let peer = current.peer().map(str::to_owned);
        match (Command::parse(&line), peer) {
            (Command::Say(text), Some(peer)) => {
                let args = format!("{peer} {text}");
                vec![send(Command::Msg(&args).to_string())]
            }
            (Command::Me(_), Some(_)) => {
                self.note(&tr!(self.language, "note.no_me_in_private"), now);
                Vec::new()
            }
            (Command::Part(args), Some(_)) if !args.starts_with('#') => {
                self.close_buffer(self.buffers.current_index())
            }
            (Command::Switch(args) | Command::Join(args), _) => {
                let room = args.split_whitespace().next().unwrap_or_default();
                if let Some(index) = self.buffers.find(&room_key(room)) {
                    return self.go_to(index);
                }
                // The room goes on screen when the server says we are in it (a room we are in
                // without a buffer gets one on `/switch` too).
                if RoomName::is_valid(room) {
                    // Joins the server refused are never answered: the oldest go first.
                    if self.joining.len() >= MAX_BUFFERS {
                        self.joining.remove(0);
                    }
                    self.joining.push(room_key(room));
                }
                // The server makes the room current if it says yes.
                self.talking_in = None;
                vec![send(line)]
            }
            (Command::Msg(args), _) => {
                let mut effects = self.open_conversation(args);
                effects.push(send(line));
                effects
            }
            (Command::Part(_), _) => {
                let mut effects = self.talk_here();
                // The server talks in another room after a part of the current one.
                self.talking_in = None;
                effects.push(send(line));
                effects
            }
            _ if target == Target::Room => {
                let mut effects = self.talk_here();
                effects.push(send(line));
                effects
            }
            _ => vec![send(line)],
        }
    }

    /// `/msg NICK TEXT` opens the conversation with NICK and puts it on screen, where its echo
    /// (or the server's refusal) will be.
    fn open_conversation(&mut self, args: &str) -> Vec<Effect> {
        let Some((nick, text)) = args.split_once(' ') else {
            return Vec::new();
        };
        let own = self.nick.as_deref().map(crate::names::fold);
        if text.trim().is_empty() || !Nick::is_valid(nick) || own == Some(crate::names::fold(nick))
        {
            return Vec::new();
        }
        match self.open_buffer(Target::Private, nick) {
            Some(index) => self.go_to(index),
            None => Vec::new(),
        }
    }

    /// A command the client answers itself; nothing is sent, except that closing a room's
    /// buffer parts the room (a room's lines would keep coming otherwise).
    pub(super) fn client_command(
        &mut self,
        command: ClientCommand<'_>,
        now: Instant,
    ) -> Vec<Effect> {
        match command {
            ClientCommand::Query("") => {
                self.note(&tr!(self.language, "note.query_usage"), now);
                Vec::new()
            }
            ClientCommand::Query(nick) if !Nick::is_valid(nick) => {
                self.note(
                    &tr!(self.language, "note.query_not_a_nick", nick = nick),
                    now,
                );
                Vec::new()
            }
            ClientCommand::Query(nick)
                if self.nick.as_deref().map(crate::names::fold)
                    == Some(crate::names::fold(nick)) =>
            {
                self.note(&tr!(self.language, "note.query_self"), now);
                Vec::new()
            }
            ClientCommand::Query(nick) => match self.open_buffer(Target::Private, nick) {
                Some(index) => self.go_to(index),
                None => {
                    self.note(&tr!(self.language, "note.too_many_buffers"), now);
                    Vec::new()
                }
            },
            ClientCommand::Lesson(number) => self.open_lesson(number, now),
            ClientCommand::Lab(args) => match lab::parse(args, self.inspector.framing.knobs) {
                Ok(command) => self.lab(command, now),
                Err(LabUsage) => {
                    self.note(&tr!(self.language, "lab.usage"), now);
                    Vec::new()
                }
            },
            ClientCommand::Shutdown(args) => match lab::parse_half(args) {
                Some(half) => self.lab(LabCommand::Act(Action::Shutdown(half)), now),
                None => {
                    self.note(&tr!(self.language, "lab.shutdown_usage"), now);
                    Vec::new()
                }
            },
            ClientCommand::Reset => self.lab(LabCommand::Act(Action::Reset), now),
            ClientCommand::Close => {
                let current = self.buffers.current();
                let index = self.buffers.current_index();
                match (current.target, current.is_lobby()) {
                    (_, true) => {
                        self.note(&tr!(self.language, "note.lobby_stays"), now);
                        Vec::new()
                    }
                    (Target::Room, false) if self.conn == Conn::Connected => {
                        // The buffer closes when the server says we left.
                        let part = Command::Part(&current.name).to_string();
                        self.talking_in = None;
                        vec![Effect::Send(Outgoing::Line(part))]
                    }
                    _ => self.close_buffer(index),
                }
            }
        }
    }
}
