//! The event store itself: its layouts and their migrations, the catalog they leave, the audit
//! against it, making a new store, upgrading one, and the digest that compares two.

pub mod audit;
pub mod build;
pub mod catalog;
pub mod digest;
pub mod layout;
pub mod provision;
pub mod upgrade;
