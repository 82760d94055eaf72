//! TLS records as the inspector shows them: the handshake's go to the timeline one by one;
//! received data records wait for the read whose plaintext they carried.

use tokio::time::Instant;

use super::Inspector;
use super::timeline::Step;
use crate::tls::record::{Content, Record, Way, handshake_name};

impl Inspector {
    pub(super) fn on_records(&mut self, records: &[Record], at: Instant) {
        for record in records {
            if record.way == Way::Received && !self.tls_handshaking {
                self.reads.carry((record.content, record.len));
            }
            let arrow = match record.way {
                Way::Sent => "→",
                Way::Received => "←",
            };
            let what = match (record.content, record.handshake, record.way) {
                (Content::Handshake, Some(kind), _) => handshake_name(kind).to_owned(),
                (Content::ChangeCipherSpec, ..) => "ChangeCipherSpec (compatibility)".to_owned(),
                (Content::Alert, ..) => "alert".to_owned(),
                (Content::ApplicationData, _, Way::Sent) if self.tls_handshaking => {
                    "Finished (encrypted)".to_owned()
                }
                (Content::ApplicationData, _, Way::Received) if self.tls_handshaking => {
                    "EncryptedExtensions … Finished (encrypted)".to_owned()
                }
                (Content::Other(byte), ..) => format!("not TLS (first byte {byte:#04x})"),
                // After the handshake, data records are shown with the reads they carried.
                _ => continue,
            };
            let step = match record.way {
                Way::Sent => Step::Send,
                Way::Received => Step::Recv,
            };
            let name = record.content.name();
            let len = record.len;
            self.timeline.record(
                record.at.min(at),
                step,
                format!("TLS {what} {arrow} [{name} {len} B]"),
            );
        }
    }
}
