//! What `status` holds against a store's grants: each privilege beyond what the roles need,
//! each one a group role lacks, and the hardening undone. For a store that opted in these are
//! drift; for one that never did, they are reported with a hint.

use std::collections::BTreeSet;

use super::{expected, AccessState, ObjectKind, RoleKind, RECORD_TABLE};

/// One line of what is wrong with the grants, naming the role, the privilege and the object.
pub type Finding = String;

fn join(privileges: &BTreeSet<&str>) -> String {
    privileges.iter().copied().collect::<Vec<_>>().join(", ")
}

fn who(grantee: &str) -> String {
    if grantee == "PUBLIC" {
        "PUBLIC (every role)".into()
    } else {
        format!("role \"{grantee}\"")
    }
}

/// The findings, in a stable order.
pub fn check(state: &AccessState) -> Vec<Finding> {
    let mut findings = Vec::new();
    let groups: Vec<(RoleKind, &str)> = state
        .groups
        .iter()
        .map(|(k, g)| (*k, g.name.as_str()))
        .collect();
    let is_group = |name: &str| groups.iter().any(|(_, g)| *g == name);

    if let Some(database) = state.database_object() {
        let public = database.held_by("PUBLIC");
        if !public.is_empty() {
            findings.push(format!(
                "PUBLIC (every role) holds {} on database \"{}\"",
                join(&public),
                database.name
            ));
        }
    }

    for (kind, group) in &state.groups {
        if !group.exists {
            findings.push(format!("the {kind} role \"{}\" does not exist", group.name));
            continue;
        }
        if group.can_login {
            findings.push(format!(
                "the {kind} role \"{}\" can log in (a group role is NOLOGIN)",
                group.name
            ));
        }
        for object in &state.objects {
            let wanted = expected(*kind, object);
            let held = object.held_by(&group.name);
            let extra: BTreeSet<&str> = held.difference(&wanted).copied().collect();
            let missing: BTreeSet<&str> = wanted.difference(&held).copied().collect();
            if !extra.is_empty() {
                findings.push(format!(
                    "the {kind} role \"{}\" holds {} on {}, beyond its part",
                    group.name,
                    join(&extra),
                    object.name
                ));
            }
            if !missing.is_empty() {
                findings.push(format!(
                    "the {kind} role \"{}\" lacks {} on {}",
                    group.name,
                    join(&missing),
                    object.name
                ));
            }
        }
    }

    for object in &state.objects {
        match object.kind {
            // Reading is no harm; anything else on the store's tables is a way around
            // append-only writes, gapless ids or the immutability trigger.
            ObjectKind::Table if object.name != RECORD_TABLE => {
                let grantees: BTreeSet<&str> = object
                    .held
                    .iter()
                    .map(|h| h.grantee.as_str())
                    .filter(|g| *g != object.owner && !is_group(g))
                    .collect();
                for grantee in grantees {
                    let beyond: BTreeSet<&str> = object
                        .held_by(grantee)
                        .into_iter()
                        .filter(|p| *p != "SELECT")
                        .collect();
                    if !beyond.is_empty() {
                        findings.push(format!(
                            "{} holds {} on {}: only the owner may change the store's tables",
                            who(grantee),
                            join(&beyond),
                            object.name
                        ));
                    }
                }
            }
            ObjectKind::Function => {
                for held in &object.held {
                    if held.privilege != "EXECUTE"
                        || held.grantee == object.owner
                        || is_group(&held.grantee)
                    {
                        continue;
                    }
                    if held.grantee == "PUBLIC" {
                        findings.push(format!("PUBLIC (every role) may execute {}", object.name));
                    } else if object.owner_only() {
                        findings.push(format!(
                            "role \"{}\" may execute {}, which only the owner may",
                            held.grantee, object.name
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    findings
}
