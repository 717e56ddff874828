//! One module per command: each turns validated settings into work on the server and a report.

pub mod create;
pub mod grant;
pub mod lifecycle;
pub mod list;
pub mod replicate;
pub mod restore;
pub mod status;
pub mod verify;
