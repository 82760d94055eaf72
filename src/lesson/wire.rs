//! The segments of a lesson's step, as facts: each one captured on loopback ([`Capture`]),
//! with its direction, its flags, its sequence and acknowledgement numbers counted from each
//! side's first (as tcpdump's relative numbers), its window, its length, and when it was seen
//! after the step began, so a 40 ms gap is there to read.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::Instant;

use super::fact::{Fact, Side};
use crate::capture::{Capture, Segment};

/// Segments shown per step: a step that makes more shows its first, its last, and the telling
/// ones between (a SYN, a FIN, an RST, a zero window).
const SHOWN: usize = 12;
/// Of those, how many come from the end, and at most how many telling ones from between.
const SHOWN_LAST: usize = 4;

/// A lesson run's view of the wire: the capture (if this process may capture) and each end's
/// first sequence number, so later segments count from it.
#[derive(Debug)]
pub struct Wire {
    capture: Result<Capture, String>,
    /// Each direction's first sequence number (its SYN's), by (sender, receiver): a lesson
    /// may make several connections to one server port.
    initial: HashMap<(SocketAddrV4, SocketAddrV4), u32>,
    /// Each direction's window scale, from its SYN: a window after the SYNs is its field
    /// shifted by the sender's scale (RFC 7323), when both SYNs offered scaling.
    scale: HashMap<(SocketAddrV4, SocketAddrV4), u8>,
}

/// The facts a step's segments show: all of them up to [`SHOWN`]; past it the first and the
/// last few, every telling one between while there is room, and a row saying how many were
/// left out at each gap.
fn shown(described: Vec<(bool, Fact)>) -> Vec<Fact> {
    let count = described.len();
    if count <= SHOWN {
        return described.into_iter().map(|(_, fact)| fact).collect();
    }
    let first = SHOWN - SHOWN_LAST * 2;
    let mut keep: Vec<bool> = (0..count)
        .map(|at| at < first || at >= count - SHOWN_LAST)
        .collect();
    let mut room = SHOWN_LAST;
    for (at, (telling, _)) in described.iter().enumerate() {
        if room > 0 && *telling && !keep[at] {
            keep[at] = true;
            room -= 1;
        }
    }
    let mut facts = Vec::new();
    let mut hidden = 0;
    for ((_, fact), kept) in described.into_iter().zip(keep) {
        if kept {
            if hidden > 0 {
                facts.push(left_out(hidden));
                hidden = 0;
            }
            facts.push(fact);
        } else {
            hidden += 1;
        }
    }
    facts
}

/// The row standing for `hidden` segments left out.
fn left_out(hidden: usize) -> Fact {
    let noun = if hidden == 1 { "segment" } else { "segments" };
    Fact::captured(format!("… {hidden} more {noun} …"))
}

impl Wire {
    /// Starts capturing; a capture that cannot start is remembered with why.
    pub fn open() -> Self {
        Self::over(Capture::open().map_err(|error| error.to_string()))
    }

    fn over(capture: Result<Capture, String>) -> Self {
        Self {
            capture,
            initial: HashMap::new(),
            scale: HashMap::new(),
        }
    }

    /// A new lesson: sequence numbers count afresh.
    pub fn restart(&mut self) {
        self.initial.clear();
        self.scale.clear();
    }

    /// The facts of the segments since `since` to or from `servers`: none captured yet, or why
    /// nothing can be (said once per lesson, at its first step).
    pub fn facts(&mut self, since: Instant, servers: &[u16], first_step: bool) -> Vec<Fact> {
        let capture = match &self.capture {
            Ok(capture) => capture,
            Err(error) if first_step => {
                return vec![Fact::returned(
                    Side::Wire,
                    format!(
                        "socket(AF_PACKET) = -1: {error}: segments not captured (that needs root \
                         or CAP_NET_RAW); every fact here comes from the sockets themselves"
                    ),
                )];
            }
            Err(_) => return Vec::new(),
        };
        let segments = capture.take(since, servers);
        // Every segment is described (the sequence numbers count from the SYNs); a step that
        // made more than the card shows keeps its first, its last, and the telling ones between.
        let described: Vec<(bool, Fact)> = segments
            .iter()
            .map(|segment| (self.telling(segment), self.fact(segment, since, servers)))
            .collect();
        shown(described)
    }

    /// Whether a segment says something the ones around it do not: it opens, ends or aborts
    /// the connection, or shuts the window.
    fn telling(&self, segment: &Segment) -> bool {
        segment.flags_show_a_change() || segment.window == 0
    }

    fn fact(&mut self, segment: &Segment, since: Instant, servers: &[u16]) -> Fact {
        let (out, back) = ((segment.from, segment.to), (segment.to, segment.from));
        if segment.is_syn() {
            self.initial.insert(out, segment.seq);
            match segment.options.window_scale {
                Some(shift) => self.scale.insert(out, shift),
                None => self.scale.remove(&out),
            };
        }
        let to_server = servers.contains(&segment.to.port());
        let arrow = if to_server {
            "client ▸ server"
        } else {
            "server ▸ client"
        };
        let relative = |direction, number: u32| {
            self.initial
                .get(&direction)
                .map_or(number, |&first| number.wrapping_sub(first))
        };
        let mut text = format!(
            "+{:.2} ms {arrow} {:<7} seq {}",
            segment.at.saturating_duration_since(since).as_secs_f64() * 1000.0,
            segment.flag_names(),
            relative(out, segment.seq),
        );
        if segment.is_ack() {
            text.push_str(&format!(" ack {}", relative(back, segment.ack)));
        }
        let window = u64::from(segment.window);
        let scales = (self.scale.get(&out), self.scale.get(&back));
        match scales {
            _ if segment.is_syn() => text.push_str(&format!(" win {window}")),
            // RFC 7323 caps the shift at 14; a SYN saying more (any local program can send one)
            // is read as 14.
            (Some(&shift), Some(_)) => {
                text.push_str(&format!(" win {}", window << shift.min(14)));
            }
            // Scaling is agreed in the SYNs; without both seen, the field is shown as sent.
            _ => text.push_str(&format!(" win {window} (unscaled)")),
        }
        if segment.len > 0 {
            text.push_str(&format!(" len {}", segment.len));
        }
        if segment.is_syn() {
            text.push_str(&format!(" <{}>", segment.options_text()));
        }
        Fact::captured(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_capture_the_first_step_says_why_and_the_others_say_nothing() {
        let mut wire = Wire::over(Err("Operation not permitted (os error 1)".into()));
        let first = wire.facts(Instant::now(), &[8888], true);
        assert_eq!(first.len(), 1);
        assert!(
            first[0]
                .text
                .starts_with("socket(AF_PACKET) = -1: Operation not permitted")
        );
        assert!(first[0].text.contains("CAP_NET_RAW"));
        assert!(wire.facts(Instant::now(), &[8888], false).is_empty());
    }
}

#[cfg(test)]
mod shown_tests {
    use super::*;

    fn numbered(count: usize, telling: &[usize]) -> Vec<(bool, Fact)> {
        (0..count)
            .map(|n| (telling.contains(&n), Fact::captured(format!("segment {n}"))))
            .collect()
    }

    fn texts(facts: &[Fact]) -> Vec<&str> {
        facts.iter().map(|fact| fact.text.as_str()).collect()
    }

    #[test]
    fn a_step_with_few_segments_shows_them_all() {
        let facts = shown(numbered(SHOWN, &[]));
        assert_eq!(facts.len(), SHOWN);
        assert!(facts.iter().all(|fact| fact.text.starts_with("segment ")));
    }

    #[test]
    fn past_the_limit_the_telling_segments_between_are_kept_and_each_gap_counted() {
        // 40 segments; 20 shuts the window, 30 is a FIN.
        let facts = shown(numbered(40, &[20, 30]));
        let texts = texts(&facts);
        assert_eq!(
            texts,
            [
                "segment 0",
                "segment 1",
                "segment 2",
                "segment 3",
                "… 16 more segments …",
                "segment 20",
                "… 9 more segments …",
                "segment 30",
                "… 5 more segments …",
                "segment 36",
                "segment 37",
                "segment 38",
                "segment 39",
            ]
        );
    }
}
