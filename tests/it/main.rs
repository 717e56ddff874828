//! The integration tests: one binary, a module per capability. Each test that needs a server
//! starts its own throwaway PostgreSQL cluster (see `support`).

mod support;

mod catalog;
mod cli;
mod connect;
mod create;
mod event_store;
mod exit_codes;
mod layout;
mod lifecycle;
mod privileges;
mod restore;
mod tls;
mod write_path;
