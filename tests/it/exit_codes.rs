//! The exit codes are one table in the code (`error::EXIT_CODES`): `--help` prints it, and the
//! README's table must list the same codes with the same meanings.

use std::collections::BTreeMap;

use init_slate_db::error::EXIT_CODES;

use crate::support::{run, tool};

/// The README's "Exit codes" table: code → meaning (markdown code spans unwrapped).
fn readme_table() -> BTreeMap<u8, String> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("### Exit codes")
        .nth(1)
        .expect("README has an \"Exit codes\" section");
    section
        .lines()
        .skip_while(|line| !line.starts_with("| code"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let code = cells[0]
                .parse::<u8>()
                .unwrap_or_else(|_| panic!("bad row: {line}"));
            (code, cells[1].replace('`', ""))
        })
        .collect()
}

#[test]
fn readme_exit_code_table_matches_the_code() {
    let code: BTreeMap<u8, String> = EXIT_CODES
        .iter()
        .map(|(c, m)| (*c, m.to_string()))
        .collect();
    assert_eq!(
        readme_table(),
        code,
        "README's exit-code table and error::EXIT_CODES differ"
    );
}

#[test]
fn help_lists_every_exit_code() {
    let outcome = run(tool().arg("--help"));
    outcome.assert_code(0);
    let help = outcome.stdout();
    let listed = help
        .split("Exit codes:")
        .nth(1)
        .expect("help has an exit-code list");
    for (code, meaning) in EXIT_CODES {
        assert!(
            listed
                .lines()
                .any(|line| line.trim_start().starts_with(&format!("{code} "))
                    && line.contains(meaning)),
            "--help does not list exit code {code} ({meaning}):\n{listed}"
        );
    }
}
