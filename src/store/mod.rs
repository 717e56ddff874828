//! The event store itself: its layouts and their migrations, the catalog they leave, the audit
//! against it, building a new store (staging), the life of an existing one (lifecycle), an
//! existing empty database made a store (provision), and the digest that compares two.

pub mod access;
pub mod audit;
pub mod catalog;
pub mod digest;
pub mod follow;
pub mod layout;
pub mod lifecycle;
pub mod provision;
pub mod staging;
