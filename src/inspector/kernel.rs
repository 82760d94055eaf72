//! The kernel's figures for the connection (`TCP_INFO`): the latest sample beside the one before
//! it, so the screen can mark what changed.

use crate::tcpinfo::TcpInfo;

/// The latest two `TCP_INFO` samples of the current (or last) connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelSamples {
    /// The latest kernel figures.
    pub latest: Option<TcpInfo>,
    /// The figures before those, to mark what changed.
    pub previous: Option<TcpInfo>,
}

impl KernelSamples {
    /// A new sample: the latest becomes the previous.
    pub fn push(&mut self, info: TcpInfo) {
        self.previous = self.latest.replace(info);
    }

    /// A new connection: the last one's figures say nothing about it.
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }
}
