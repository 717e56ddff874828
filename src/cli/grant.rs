//! Validation of `grant`'s options: role names, and what may be asked together.

use std::collections::BTreeSet;

use super::args::GrantArgs;
use super::validate::database_name;
use crate::commands::grant::GrantSettings;
use crate::identifier::MAX_IDENTIFIER_BYTES;
use crate::lock::Waits;
use crate::output::OutputFormat;
use crate::store::access::RoleKind;

/// Names GRANT and REVOKE read as something other than a role (PUBLIC is every role).
const RESERVED: &[&str] = &[
    "public",
    "none",
    "current_user",
    "session_user",
    "current_role",
];

/// A role name: any text PostgreSQL accepts (always quoted), 1 to 63 bytes, not reserved.
fn role_name(option: &str, name: &str, problems: &mut Vec<String>) -> Option<String> {
    if name.is_empty() || name.len() > MAX_IDENTIFIER_BYTES {
        problems.push(format!(
            "{option} {name:?} is invalid: a role name is 1 to {MAX_IDENTIFIER_BYTES} bytes long"
        ));
        return None;
    }
    if RESERVED.contains(&name.to_lowercase().as_str()) || name.starts_with("pg_") {
        problems.push(format!(
            "{option} {name:?} is invalid: PUBLIC, NONE, CURRENT_USER, SESSION_USER, CURRENT_ROLE and names starting with pg_ are reserved by PostgreSQL"
        ));
        return None;
    }
    Some(name.to_string())
}

pub(super) fn validate_grant(
    args: GrantArgs,
    url_database: Option<&str>,
    format: OutputFormat,
    waits: Waits,
    problems: &mut Vec<String>,
) -> Option<GrantSettings> {
    let database = database_name(args.database.as_deref().or(url_database), problems);
    let mut add = Vec::new();
    for (kind, names) in [
        (RoleKind::Writer, &args.writer),
        (RoleKind::Reader, &args.reader),
        (RoleKind::Replicator, &args.replicator),
    ] {
        for name in names {
            if let Some(name) = role_name(&format!("--{kind}"), name, problems) {
                if !add.contains(&(kind, name.clone())) {
                    add.push((kind, name));
                }
            }
        }
    }
    let mut group_names = Vec::new();
    for (kind, name) in [
        (RoleKind::Writer, &args.writer_role),
        (RoleKind::Reader, &args.reader_role),
        (RoleKind::Replicator, &args.replicator_role),
    ] {
        if let Some(name) = name {
            if let Some(name) = role_name(&format!("--{kind}-role"), name, problems) {
                group_names.push((kind, name));
            }
        }
    }
    let distinct: BTreeSet<&String> = group_names.iter().map(|(_, n)| n).collect();
    if distinct.len() < group_names.len() {
        problems.push(
            "--writer-role, --reader-role and --replicator-role must name three different roles"
                .into(),
        );
    }
    let mut remove = Vec::new();
    for name in &args.remove {
        if let Some(name) = role_name("--remove", name, problems) {
            if add.iter().any(|(_, n)| *n == name) {
                problems.push(format!(
                    "role {name:?} is both put into a role and removed: choose one"
                ));
            }
            if !remove.contains(&name) {
                remove.push(name);
            }
        }
    }
    if let Some((kind, name)) = add
        .iter()
        .find(|(_, n)| group_names.iter().any(|(_, g)| g == n))
    {
        problems.push(format!(
            "--{kind} {name:?} names a group role: --{kind} takes the roles that use it"
        ));
    }
    if args.replication && args.replicator.is_empty() {
        problems.push(
            "--replication gives the --replicator roles the REPLICATION attribute: name them with --replicator"
                .into(),
        );
    }
    Some(GrantSettings {
        database: database?,
        group_names,
        add,
        remove,
        replication: args.replication,
        dry_run: args.dry_run,
        waits,
        format,
    })
}
