//! The server's side of the sockets, as the inspector holds it: the last sample of the
//! server this process hosts ([`crate::server::observe`]), or the fact that it hosts none, in
//! which case the server's sockets are in another process and cannot be seen from here.

use crate::server::observe::ServerSample;

/// What the inspector knows of the server's side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ServerSide {
    /// This process does not host the room (it joined one), or not yet sampled.
    #[default]
    Elsewhere,
    /// This process hosts the room; its sockets as last sampled.
    Sampled(Box<ServerSample>),
}
