//! The statements that give a store's group roles exactly what their part needs, harden the
//! store, and put login roles into the groups or take them out: computed from what the
//! catalog holds, so a second run finds nothing to do.

use std::collections::BTreeSet;

use super::{expected, AccessState, ObjectKind, RoleKind, RECORD_TABLE};
use crate::pg::{quote_identifier as q, quote_literal};

/// What a `grant` run is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The store's group role of each kind, by name.
    pub groups: Vec<(RoleKind, String)>,
    /// Roles to put into a group.
    pub add: Vec<(RoleKind, String)>,
    /// Roles to take out of every group of the store.
    pub remove: Vec<String>,
    /// Give the replicator roles added the REPLICATION attribute.
    pub replication: bool,
}

/// Why a run cannot be carried out; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The running role may not do it; says what it needs.
    Privilege(String),
    /// A role named cannot play its part.
    Role(String),
}

/// The statements of a run, in order, and what a person should know about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub statements: Vec<String>,
    pub notes: Vec<String>,
}

/// `GRANT a, b ON target TO role` / `REVOKE ... FROM role`, or nothing for no privileges.
fn privileges(verb: &str, privileges: &BTreeSet<&str>, target: &str, role: &str) -> Option<String> {
    if privileges.is_empty() {
        return None;
    }
    let list = privileges.iter().copied().collect::<Vec<_>>().join(", ");
    let role = if role == "PUBLIC" {
        "PUBLIC".to_string()
    } else {
        q(role)
    };
    Some(match verb {
        "GRANT" => format!("GRANT {list} ON {target} TO {role}"),
        _ => format!("REVOKE {list} ON {target} FROM {role}"),
    })
}

/// Checks what the run needs, then lists its statements. Nothing here touches the server.
pub fn plan(state: &AccessState, request: &Request) -> Result<Plan, Problem> {
    let runner = &state.runner;
    let v16 = runner.server_version >= 160000;
    let database = state
        .database_object()
        .map(|o| o.name.as_str())
        .unwrap_or("?");
    if !runner.acts_as_owner {
        let owner = state
            .database_object()
            .map(|o| o.owner.as_str())
            .unwrap_or("?");
        return Err(Problem::Privilege(format!(
            "grant on \"{database}\" must run as the owner of the database and of its tables and functions (\"{owner}\"), as a member of that role, or as a superuser; connected as \"{}\"",
            runner.name
        )));
    }
    let group_names: Vec<&str> = request.groups.iter().map(|(_, n)| n.as_str()).collect();
    for (kind, group) in &state.groups {
        if group.exists && group.can_login {
            return Err(Problem::Role(format!(
                "role \"{}\" can log in, so it cannot be the store's {kind} group role (a group role is NOLOGIN): name another with --{kind}-role",
                group.name
            )));
        }
        if !group.exists && !runner.superuser && !runner.createrole {
            return Err(Problem::Privilege(format!(
                "creating the group role \"{}\" needs CREATEROLE: ALTER ROLE \"{}\" CREATEROLE as a superuser, or have the group roles created beforehand and granted to \"{}\" WITH ADMIN OPTION",
                group.name, runner.name, runner.name
            )));
        }
    }
    let admin_needed = |group: &str| -> Problem {
        Problem::Privilege(format!(
            "changing the members of \"{group}\" needs ADMIN OPTION on it (from PostgreSQL 16; before, CREATEROLE is enough): GRANT \"{group}\" TO \"{}\" WITH ADMIN OPTION, as a role that holds it",
            runner.name
        ))
    };
    let group_of = |kind: RoleKind| state.group(kind);

    let mut plan = Plan::default();
    let statements = &mut plan.statements;
    let notes = &mut plan.notes;

    // 1. The group roles.
    for (_, group) in &state.groups {
        if !group.exists {
            statements.push(format!("CREATE ROLE {} NOLOGIN", q(&group.name)));
        }
    }

    // 2. Hardening: PUBLIC keeps nothing on the database and executes none of the layout's or
    //    dblink's functions; the runner revokes what it may, and says what it may not.
    for object in &state.objects {
        let public: BTreeSet<&str> = match object.kind {
            ObjectKind::Database => object.held_by("PUBLIC"),
            ObjectKind::Function => object
                .held_by("PUBLIC")
                .into_iter()
                .filter(|p| *p == "EXECUTE")
                .collect(),
            ObjectKind::Table => BTreeSet::new(),
        };
        if public.is_empty() {
            continue;
        }
        if object.runner_owns {
            statements.extend(privileges("REVOKE", &public, &object.target, "PUBLIC"));
        } else {
            notes.push(format!(
                "PUBLIC keeps EXECUTE on {} (it belongs to \"{}\"): as that role, run REVOKE EXECUTE ON {} FROM PUBLIC",
                object.name, object.owner, object.target
            ));
        }
    }

    // 3. Each group gets exactly its part on the database, the tables and the functions.
    for (kind, group) in &state.groups {
        for object in state.objects.iter().filter(|o| o.runner_owns) {
            let wanted = expected(*kind, object);
            let held = object.held_by(&group.name);
            let extra: BTreeSet<&str> = held.difference(&wanted).copied().collect();
            let missing: BTreeSet<&str> = wanted.difference(&held).copied().collect();
            statements.extend(privileges("REVOKE", &extra, &object.target, &group.name));
            statements.extend(privileges("GRANT", &missing, &object.target, &group.name));
        }
    }

    // 4. Roles put into a group: out with what they held directly beyond reading, which the
    //    group replaces (a V10 writer's INSERT on events and UPDATE on id), then in.
    for (kind, login) in &request.add {
        let Some(facts) = state.other(login).filter(|f| f.exists) else {
            return Err(Problem::Role(format!(
                "role \"{login}\" does not exist: create it first (CREATE ROLE \"{login}\" LOGIN PASSWORD '...'), then run grant again"
            )));
        };
        if group_names.contains(&login.as_str()) {
            return Err(Problem::Role(format!(
                "\"{login}\" is one of the store's group roles: --{kind} takes the roles that use it"
            )));
        }
        for object in state.objects.iter().filter(|o| o.runner_owns) {
            let direct: BTreeSet<&str> = match object.kind {
                ObjectKind::Table if object.name != RECORD_TABLE => object
                    .held_by(login)
                    .into_iter()
                    .filter(|p| *p != "SELECT")
                    .collect(),
                ObjectKind::Function if object.owner_only() => object.held_by(login),
                _ => BTreeSet::new(),
            };
            statements.extend(privileges("REVOKE", &direct, &object.target, login));
        }
        let Some(group) = group_of(*kind) else {
            continue;
        };
        let membership = state.is_member(&group.name, login);
        let needs_grant = match membership {
            None => true,
            // From 16 the membership itself says whether rights pass without SET ROLE.
            Some(m) => v16 && !m.inherits,
        };
        if needs_grant {
            if group.exists && !group.administered {
                return Err(admin_needed(&group.name));
            }
            statements.push(if v16 {
                format!("GRANT {} TO {} WITH INHERIT TRUE", q(&group.name), q(login))
            } else {
                format!("GRANT {} TO {}", q(&group.name), q(login))
            });
        }
        if !v16 && !facts.inherit {
            notes.push(format!(
                "\"{login}\" is NOINHERIT: it uses the {kind} role's rights only after SET ROLE \"{}\" (or ALTER ROLE \"{login}\" INHERIT)",
                group.name
            ));
        }
        if facts.superuser {
            notes.push(format!(
                "\"{login}\" is a superuser: its rights do not come from the {kind} role"
            ));
        }
        if *kind == RoleKind::Replicator && !facts.replication && !facts.superuser {
            if request.replication {
                let may = runner.superuser
                    || (v16 && runner.createrole && runner.replication && facts.administered);
                if !may {
                    return Err(Problem::Privilege(format!(
                        "giving \"{login}\" the REPLICATION attribute (a subscription's connection needs it; attributes do not pass through group roles) takes a superuser before PostgreSQL 16, and from 16 a role with CREATEROLE and REPLICATION that holds ADMIN OPTION on \"{login}\"; connected as \"{}\": have such a role run ALTER ROLE \"{login}\" REPLICATION (on a managed service, grant its replication role instead, such as rds_replication on Amazon RDS), then run grant without --replication",
                        runner.name
                    )));
                }
                statements.push(format!("ALTER ROLE {} REPLICATION", q(login)));
            } else {
                notes.push(format!(
                    "\"{login}\" has no REPLICATION attribute: enough for the Node replicator, not for a logical-replication subscription's connection (add --replication)"
                ));
            }
        }
    }

    // 5. Roles taken out of every group of the store.
    for login in &request.remove {
        let mut found = false;
        for (_, group) in &state.groups {
            if state.is_member(&group.name, login).is_some() {
                found = true;
                if !group.administered {
                    return Err(admin_needed(&group.name));
                }
                statements.push(format!("REVOKE {} FROM {}", q(&group.name), q(login)));
            }
        }
        if !found {
            notes.push(format!(
                "\"{login}\" is in none of the store's group roles: nothing to take away"
            ));
        }
    }

    // 6. The record: the store opts in, and remembers its group names.
    for (kind, name) in &request.groups {
        let recorded = state.recorded.iter().find(|(k, _)| k == kind);
        if recorded.map(|(_, n)| n) != Some(name) {
            statements.push(format!(
                "INSERT INTO public.{RECORD_TABLE} (kind, role_name) VALUES ({}, {}) ON CONFLICT (kind) DO UPDATE SET role_name = EXCLUDED.role_name",
                quote_literal(kind.into()),
                quote_literal(name)
            ));
        }
    }
    Ok(plan)
}
