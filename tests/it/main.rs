//! The integration tests: one binary, a module per capability. Each test that needs a server
//! starts its own throwaway PostgreSQL cluster (see `support`).

mod support;

mod catalog;
mod cli;
mod connect;
mod create;
mod event_store;
mod exit_codes;
#[cfg(feature = "test-hooks")]
mod faults;
mod grants;
#[cfg(feature = "test-hooks")]
mod interrupted;
mod json_documents;
mod layout;
mod lifecycle;
mod privileges;
mod refusals;
mod replicate;
mod restore;
#[cfg(feature = "test-hooks")]
mod sessions;
mod tls;
mod verdicts;
mod verify;
mod write_path;
mod writers;

/// The fault tests pause the tool at named steps through the `test-hooks` build: without the
/// feature they could not run, so the suite fails instead of silently skipping them.
#[cfg(not(feature = "test-hooks"))]
#[test]
fn the_tests_need_the_test_hooks_feature() {
    panic!("run the tests with: cargo test --locked --features test-hooks");
}
