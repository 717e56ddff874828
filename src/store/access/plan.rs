//! The statements that give a store's group roles exactly what their part needs, harden the
//! store, and put login roles into the groups or take them out: computed from what the
//! catalog holds, so a second run finds nothing to do.

use std::collections::BTreeSet;

use super::{
    expected, reads_only, AccessState, Object, ObjectKind, RoleKind, PUBLIC, RECORD_TABLE,
};
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

/// A grantee as SQL: PUBLIC, or a quoted role name.
fn grantee(role: &str) -> String {
    if role == PUBLIC {
        PUBLIC.to_string()
    } else {
        q(role)
    }
}

fn list(privileges: &BTreeSet<&str>) -> String {
    privileges.iter().copied().collect::<Vec<_>>().join(", ")
}

/// `GRANT a, b ON target TO role`, or nothing for no privileges.
fn grant(privileges: &BTreeSet<&str>, object: &Object, role: &str) -> Option<String> {
    (!privileges.is_empty()).then(|| {
        format!(
            "GRANT {} ON {} TO {}",
            list(privileges),
            object.target,
            grantee(role)
        )
    })
}

/// The REVOKE of `privileges` held by `role` on `object`, or nothing for none. Only the
/// grantor can take a privilege back (the owner, for a superuser's grant); one granted by
/// another role is refused with the statement to run as it. A privilege held WITH GRANT OPTION
/// is revoked with CASCADE, taking what its holder passed on with it.
fn revoke(
    privileges: &BTreeSet<&str>,
    object: &Object,
    role: &str,
) -> Result<Option<String>, Problem> {
    if privileges.is_empty() {
        return Ok(None);
    }
    let mut cascade = false;
    for privilege in privileges {
        for held in object.grants_of(role, privilege) {
            if held.grantor != object.owner {
                return Err(Problem::Privilege(format!(
                    "{} holds {privilege} on {} granted by {}, and only that role can take it back: as {}, run REVOKE {privilege} ON {} FROM {} CASCADE, then run grant again",
                    grantee(role),
                    object.name,
                    q(&held.grantor),
                    q(&held.grantor),
                    object.target,
                    grantee(role)
                )));
            }
            cascade |= held.grantable;
        }
    }
    Ok(Some(format!(
        "REVOKE {} ON {} FROM {}{}",
        list(privileges),
        object.target,
        grantee(role),
        if cascade { " CASCADE" } else { "" }
    )))
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
            "grant on \"{database}\" must run as the owner of the database and of its tables and functions ({}), as a role that inherits its rights, or as a superuser; connected as {}",
            q(owner),
            q(&runner.name)
        )));
    }
    let group_names: Vec<&str> = request.groups.iter().map(|(_, n)| n.as_str()).collect();
    for (kind, group) in &state.groups {
        if group.exists && group.can_login {
            return Err(Problem::Role(format!(
                "role {} can log in, so it cannot be the store's {kind} group role (a group role is NOLOGIN): name another with --{kind}-role",
                q(&group.name)
            )));
        }
        if !group.exists && !runner.superuser && !runner.createrole {
            return Err(Problem::Privilege(format!(
                "creating the group role {} needs CREATEROLE: ALTER ROLE {} CREATEROLE as a superuser, or have the group roles created beforehand and granted to {} WITH ADMIN OPTION",
                q(&group.name),
                q(&runner.name),
                q(&runner.name)
            )));
        }
    }
    let admin_needed = |group: &str| -> Problem {
        Problem::Privilege(format!(
            "changing the members of {} needs ADMIN OPTION on it (from PostgreSQL 16; before, CREATEROLE is enough): as a role that holds it, run GRANT {} TO {} WITH ADMIN OPTION{}",
            q(group),
            q(group),
            q(&runner.name),
            if v16 { ", INHERIT FALSE, SET FALSE" } else { "" }
        ))
    };
    let owners = state.owners();

    let mut plan = Plan::default();

    // A group must hold its part and nothing more: one that is, or uses the rights of, the
    // owner (or pg_write_all_data, pg_maintain) cannot be made so, and its own rights must not
    // be revoked (the owner's would stop append_events).
    for (kind, group) in &state.groups {
        if let Some(wider) = group.wider.first() {
            return Err(Problem::Role(format!(
                "role {} is, or uses the rights of, {}: it holds more than a {kind}'s part and cannot be made one; name another with --{kind}-role",
                q(&group.name),
                q(wider)
            )));
        }
    }

    // 1. The group roles.
    for (_, group) in &state.groups {
        if !group.exists {
            plan.statements
                .push(format!("CREATE ROLE {} NOLOGIN", q(&group.name)));
        }
    }

    // 2. Hardening: PUBLIC keeps nothing on the database, no CREATE in schema public, and
    //    executes none of the store's or dblink's functions. The runner revokes what it may
    //    and says what it may not.
    let mut foreign_dblink: Vec<&Object> = Vec::new();
    for object in &state.objects {
        let public: BTreeSet<&str> = match object.kind {
            ObjectKind::Database => object.held_by(PUBLIC),
            ObjectKind::Schema => object
                .held_by(PUBLIC)
                .into_iter()
                .filter(|p| *p != "USAGE")
                .collect(),
            ObjectKind::Function => object
                .held_by(PUBLIC)
                .into_iter()
                .filter(|p| *p == "EXECUTE")
                .collect(),
            ObjectKind::Table => object
                .held_by(PUBLIC)
                .into_iter()
                .filter(|p| !reads_only(p))
                .collect(),
        };
        if public.is_empty() {
            continue;
        }
        if object.runner_owns {
            plan.statements.extend(revoke(&public, object, PUBLIC)?);
            // Before 15 the store's owner creates in schema public through PUBLIC's CREATE:
            // it keeps it in its own name, or its next migration could not create anything.
            if object.kind == ObjectKind::Schema && public.contains("CREATE") {
                for owner in owners.iter().filter(|o| **o != object.owner) {
                    if !object.held_by(owner).contains("CREATE") {
                        plan.statements
                            .push(format!("GRANT CREATE ON SCHEMA public TO {}", q(owner)));
                    }
                }
            }
        } else if object.dblink {
            foreign_dblink.push(object);
        } else {
            plan.notes.push(format!(
                "PUBLIC keeps {} on {} (it belongs to {}): as that role, run REVOKE {} ON {} FROM PUBLIC",
                list(&public),
                object.name,
                q(&object.owner),
                list(&public),
                object.target
            ));
        }
    }
    if let Some(first) = foreign_dblink.first() {
        plan.notes.push(format!(
            "PUBLIC keeps EXECUTE on {} of dblink's functions (they belong to {}): as that role, run REVOKE EXECUTE ON FUNCTION ... FROM PUBLIC for each, such as REVOKE EXECUTE ON {} FROM PUBLIC",
            foreign_dblink.len(),
            q(&first.owner),
            first.target
        ));
    }

    // 3. Each group gets exactly its part on the database, the tables and the functions. In
    //    schema public it only needs USAGE, which PUBLIC has unless a DBA took it away.
    for (kind, group) in &state.groups {
        for object in state.objects.iter().filter(|o| o.runner_owns) {
            if object.kind == ObjectKind::Schema {
                if !object.held_by(PUBLIC).contains("USAGE")
                    && !object.held_by(&group.name).contains("USAGE")
                {
                    plan.statements.push(format!(
                        "GRANT USAGE ON SCHEMA public TO {}",
                        q(&group.name)
                    ));
                }
                continue;
            }
            let wanted = expected(*kind, object);
            let held = object.held_by(&group.name);
            let extra: BTreeSet<&str> = held.difference(&wanted).copied().collect();
            let mut missing: BTreeSet<&str> = wanted.difference(&held).copied().collect();
            // A table-level REVOKE takes the same privilege on every column with it: a column
            // privilege of the part is granted again after it.
            for privilege in &extra {
                let column = format!("{privilege} (");
                missing.extend(wanted.iter().filter(|w| w.starts_with(&column)));
            }
            plan.statements.extend(revoke(&extra, object, &group.name)?);
            plan.statements.extend(grant(&missing, object, &group.name));
            // A part held WITH GRANT OPTION could be passed on: keep the part, drop the option.
            let passable: BTreeSet<&str> = wanted
                .intersection(&held)
                .copied()
                .filter(|p| object.grants_of(&group.name, p).any(|h| h.grantable))
                .collect();
            if !passable.is_empty() {
                // Only the grantor can take the option back, as with a privilege.
                for privilege in &passable {
                    for held in object.grants_of(&group.name, privilege) {
                        if held.grantor != object.owner {
                            return Err(Problem::Privilege(format!(
                                "{} holds {privilege} on {} WITH GRANT OPTION granted by {}, and only that role can take the option back: as {}, run REVOKE GRANT OPTION FOR {privilege} ON {} FROM {} CASCADE",
                                q(&group.name),
                                object.name,
                                q(&held.grantor),
                                q(&held.grantor),
                                object.target,
                                q(&group.name)
                            )));
                        }
                    }
                }
                plan.statements.push(format!(
                    "REVOKE GRANT OPTION FOR {} ON {} FROM {} CASCADE",
                    list(&passable),
                    object.target,
                    q(&group.name)
                ));
            }
        }
    }

    // 4. Roles put into a group: out with what they held directly that the group replaces (a
    //    V10 writer's INSERT on events and UPDATE on id; a writer reads nothing), then in.
    for (kind, login) in &request.add {
        let Some(facts) = state.other(login).filter(|f| f.exists) else {
            return Err(Problem::Role(format!(
                "role {} does not exist: create it first (CREATE ROLE {} LOGIN PASSWORD '...'), then run grant again",
                q(login),
                q(login)
            )));
        };
        if group_names.contains(&login.as_str()) {
            return Err(Problem::Role(format!(
                "{} is one of the store's group roles: --{kind} takes the roles that use it",
                q(login)
            )));
        }
        if let Some(owner) = facts.wider.iter().find(|w| owners.contains(w.as_str())) {
            return Err(Problem::Role(format!(
                "{} is, or uses the rights of, {}, which owns the store and keeps every right: it cannot be made a {kind}; give the application a login role of its own",
                q(login),
                q(owner)
            )));
        }
        for object in state.objects.iter().filter(|o| o.runner_owns) {
            let direct: BTreeSet<&str> = match object.kind {
                ObjectKind::Table => object
                    .held_by(login)
                    .into_iter()
                    .filter(|p| {
                        !reads_only(p) || (*kind == RoleKind::Writer && object.name != RECORD_TABLE)
                    })
                    .collect(),
                ObjectKind::Function if object.owner_only() => object.held_by(login),
                _ => BTreeSet::new(),
            };
            plan.statements.extend(revoke(&direct, object, login)?);
        }
        let Some(group) = state.group(*kind) else {
            continue;
        };
        let needs_grant = match state.is_member(&group.name, login) {
            None => true,
            // From 16 the membership itself says whether rights pass without SET ROLE.
            Some(m) => v16 && !m.inherits,
        };
        if needs_grant {
            if group.exists && !group.administered {
                return Err(admin_needed(&group.name));
            }
            plan.statements.push(if v16 {
                format!("GRANT {} TO {} WITH INHERIT TRUE", q(&group.name), q(login))
            } else {
                format!("GRANT {} TO {}", q(&group.name), q(login))
            });
        }
        if !v16 && !facts.inherit {
            plan.notes.push(format!(
                "{} is NOINHERIT: it uses the {kind} role's rights only after SET ROLE {} (or ALTER ROLE {} INHERIT)",
                q(login),
                q(&group.name),
                q(login)
            ));
        }
        if *kind == RoleKind::Replicator && !facts.replication && !facts.superuser {
            if request.replication {
                let may = runner.superuser
                    || (v16 && runner.createrole && runner.replication && facts.administered);
                if !may {
                    return Err(Problem::Privilege(format!(
                        "giving {} the REPLICATION attribute (a subscription's connection needs it; attributes do not pass through group roles) takes a superuser before PostgreSQL 16, and from 16 a role with CREATEROLE and REPLICATION that holds ADMIN OPTION on {}; connected as {}: have such a role run ALTER ROLE {} REPLICATION (on a managed service, grant its replication role instead, such as rds_replication on Amazon RDS), then run grant without --replication",
                        q(login),
                        q(login),
                        q(&runner.name),
                        q(login)
                    )));
                }
                plan.statements
                    .push(format!("ALTER ROLE {} REPLICATION", q(login)));
            } else {
                plan.notes.push(format!(
                    "{} has no REPLICATION attribute: enough for the Node replicator, not for a logical-replication subscription's connection (add --replication)",
                    q(login)
                ));
            }
        }
    }

    // 5. Roles taken out of every group of the store; from 16, each grantor's grant.
    for login in &request.remove {
        let mut found = false;
        for (_, group) in &state.groups {
            let Some(member) = state.is_member(&group.name, login) else {
                continue;
            };
            found = true;
            if !group.administered {
                return Err(admin_needed(&group.name));
            }
            if v16 {
                for grantor in &member.grantors {
                    plan.statements.push(format!(
                        "REVOKE {} FROM {} GRANTED BY {}",
                        q(&group.name),
                        q(login),
                        q(grantor)
                    ));
                }
            } else {
                plan.statements
                    .push(format!("REVOKE {} FROM {}", q(&group.name), q(login)));
            }
        }
        if !found {
            plan.notes.push(format!(
                "{} is in none of the store's group roles: nothing to take away",
                q(login)
            ));
        }
    }

    // 6. The record: the store opts in, and remembers its group names.
    for (kind, name) in &request.groups {
        let recorded = state.recorded.iter().find(|(k, _)| k == kind);
        if recorded.map(|(_, n)| n) != Some(name) {
            plan.statements.push(format!(
                "INSERT INTO public.{RECORD_TABLE} (kind, role_name) VALUES ({}, {}) ON CONFLICT (kind) DO UPDATE SET role_name = EXCLUDED.role_name",
                quote_literal(kind.into()),
                quote_literal(name)
            ));
        }
    }
    Ok(plan)
}
