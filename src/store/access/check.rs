//! What `status` holds against a store's grants: each privilege beyond what the roles need,
//! each one a group role lacks, and the hardening undone. For a store that opted in these are
//! drift; for one that never did, they are reported with a hint.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Serialize, Serializer};

use super::{expected, reads_only, AccessState, ObjectKind, RoleKind, PUBLIC};

/// Whose privilege a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum About {
    /// PUBLIC, every role: `grant` takes it back.
    Public,
    /// One of the store's group roles: `grant` puts it right.
    Group,
    /// A role in none of the groups, or a member's own: left to the operator.
    Role,
}

/// One thing wrong with the grants, as a sentence naming the role, the privilege and the
/// object (JSON: the sentence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub about: About,
    pub line: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

impl Serialize for Finding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.line)
    }
}

fn join<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}

fn who(grantee: &str) -> String {
    if grantee == PUBLIC {
        "PUBLIC (every role)".into()
    } else {
        format!("role \"{grantee}\"")
    }
}

/// The findings, in a stable order.
pub fn check(state: &AccessState) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut push = |about: About, line: String| findings.push(Finding { about, line });
    let is_group = |name: &str| state.groups.iter().any(|(_, g)| g.name == name);
    let writers: BTreeSet<&str> = state
        .group(RoleKind::Writer)
        .map(|g| {
            state
                .members
                .iter()
                .filter(|m| m.group == g.name)
                .map(|m| m.member.as_str())
                .collect()
        })
        .unwrap_or_default();

    if let Some(database) = state.database_object() {
        let public = database.held_by(PUBLIC);
        if !public.is_empty() {
            push(
                About::Public,
                format!(
                    "PUBLIC (every role) holds {} on database \"{}\"",
                    join(public),
                    database.name
                ),
            );
        }
    }

    for (kind, group) in &state.groups {
        if !group.exists {
            push(
                About::Group,
                format!("the {kind} role \"{}\" does not exist", group.name),
            );
            continue;
        }
        if group.can_login {
            push(
                About::Group,
                format!(
                    "the {kind} role \"{}\" can log in (a group role is NOLOGIN)",
                    group.name
                ),
            );
        }
        if !group.wider.is_empty() {
            push(
                About::Group,
                format!(
                    "the {kind} role \"{}\" uses the rights of {}, beyond its part",
                    group.name,
                    join(group.wider.iter().map(String::as_str))
                ),
            );
        }
        for object in state
            .objects
            .iter()
            .filter(|o| o.kind != ObjectKind::Schema)
        {
            let wanted = expected(*kind, object);
            let held = object.held_by(&group.name);
            let extra: Vec<&str> = held.difference(&wanted).copied().collect();
            let missing: Vec<&str> = wanted.difference(&held).copied().collect();
            if !extra.is_empty() {
                push(
                    About::Group,
                    format!(
                        "the {kind} role \"{}\" holds {} on {}, beyond its part",
                        group.name,
                        join(extra),
                        object.name
                    ),
                );
            }
            if !missing.is_empty() {
                push(
                    About::Group,
                    format!(
                        "the {kind} role \"{}\" lacks {} on {}",
                        group.name,
                        join(missing),
                        object.name
                    ),
                );
            }
            let passable: Vec<&str> = object
                .held
                .iter()
                .filter(|h| h.grantee == group.name && h.grantable)
                .map(|h| h.privilege.as_str())
                .collect();
            if !passable.is_empty() {
                push(
                    About::Group,
                    format!(
                        "the {kind} role \"{}\" holds {} on {} WITH GRANT OPTION",
                        group.name,
                        join(passable),
                        object.name
                    ),
                );
            }
        }
    }

    // Functions of dblink are many: one line per grantee for all of them.
    let mut dblink: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for object in &state.objects {
        match object.kind {
            // Reading is no harm; anything else on the store's tables is a way around
            // append-only writes, gapless ids, the immutability trigger or the record. A
            // writer reads nothing.
            ObjectKind::Table => {
                let grantees: BTreeSet<&str> = object
                    .held
                    .iter()
                    .map(|h| h.grantee.as_str())
                    .filter(|g| *g != object.owner && !is_group(g))
                    .collect();
                for grantee in grantees {
                    let writer = writers.contains(grantee) && object.name != super::RECORD_TABLE;
                    let beyond: Vec<&str> = object
                        .held_by(grantee)
                        .into_iter()
                        .filter(|p| writer || !reads_only(p))
                        .collect();
                    if beyond.is_empty() {
                        continue;
                    }
                    let about = if grantee == PUBLIC {
                        About::Public
                    } else {
                        About::Role
                    };
                    push(
                        about,
                        if writer {
                            format!(
                                "{}, a writer, holds {} on {}: a writer appends through insert_events and holds nothing on the tables",
                                who(grantee),
                                join(beyond),
                                object.name
                            )
                        } else {
                            format!(
                                "{} holds {} on {}: only the owner may change the store's tables",
                                who(grantee),
                                join(beyond),
                                object.name
                            )
                        },
                    );
                }
            }
            ObjectKind::Function => {
                for held in &object.held {
                    if held.privilege != "EXECUTE"
                        || held.grantee == object.owner
                        || is_group(&held.grantee)
                        || (held.grantee != PUBLIC && !object.owner_only())
                    {
                        continue;
                    }
                    if object.dblink {
                        dblink
                            .entry(held.grantee.as_str())
                            .or_default()
                            .push(&object.name);
                    } else if held.grantee == PUBLIC {
                        push(
                            About::Public,
                            format!("PUBLIC (every role) may execute {}", object.name),
                        );
                    } else {
                        push(
                            About::Role,
                            format!(
                                "role \"{}\" may execute {}, which only the owner may",
                                held.grantee, object.name
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    for (grantee, functions) in dblink {
        let about = if grantee == PUBLIC {
            About::Public
        } else {
            About::Role
        };
        let examples = join(functions.iter().take(2).copied());
        push(
            about,
            format!(
                "{} may execute {} of dblink's functions ({examples}{}), which only the owner may",
                who(grantee),
                functions.len(),
                if functions.len() > 2 { ", ..." } else { "" }
            ),
        );
    }
    findings
}
