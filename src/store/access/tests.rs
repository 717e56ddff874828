//! [`plan`] and [`check`] on states built by hand: what a fresh store needs, that a store as
//! `grant` leaves it needs nothing and shows no finding, and that each stray privilege is named.

use super::*;

fn held(grantee: &str, privileges: &[&str]) -> Vec<Held> {
    privileges
        .iter()
        .map(|p| Held {
            grantee: grantee.into(),
            privilege: (*p).into(),
            grantor: "owner".into(),
            grantable: false,
        })
        .collect()
}

fn object(kind: ObjectKind, name: &str, target: &str, acl: Vec<Held>) -> Object {
    Object {
        kind,
        name: name.into(),
        target: target.into(),
        owner: "owner".into(),
        dblink: false,
        runner_owns: true,
        held: acl,
    }
}

fn group(name: &str, exists: bool) -> RoleFacts {
    RoleFacts {
        name: name.into(),
        exists,
        inherit: true,
        administered: exists,
        ..RoleFacts::default()
    }
}

/// A source as `create` leaves it (PUBLIC connects; V11 revoked its EXECUTE).
fn fresh() -> AccessState {
    AccessState {
        layout: Layout::Source,
        database: "orders".into(),
        runner: Runner {
            name: "owner".into(),
            createrole: true,
            server_version: 170000,
            acts_as_owner: true,
            ..Runner::default()
        },
        objects: vec![
            object(ObjectKind::Database, "orders", "DATABASE orders", {
                let mut acl = held("PUBLIC", &["CONNECT", "TEMPORARY"]);
                acl.extend(held("owner", &["CONNECT", "CREATE", "TEMPORARY"]));
                acl
            }),
            object(
                ObjectKind::Table,
                "events",
                "TABLE public.events",
                held("owner", &["SELECT", "INSERT"]),
            ),
            object(
                ObjectKind::Table,
                "id",
                "TABLE public.id",
                held("owner", &["SELECT", "UPDATE"]),
            ),
            object(
                ObjectKind::Function,
                "insert_events(text)",
                "FUNCTION public.insert_events(text)",
                held("owner", &["EXECUTE"]),
            ),
            object(
                ObjectKind::Function,
                "append_events(jsonb[], integer[])",
                "FUNCTION public.append_events(jsonb[], integer[])",
                held("owner", &["EXECUTE"]),
            ),
            object(
                ObjectKind::Function,
                "restore_events(text, text, text, text, integer)",
                "FUNCTION public.restore_events(text, text, text, text, integer)",
                held("owner", &["EXECUTE"]),
            ),
        ],
        recorded: Vec::new(),
        groups: vec![
            (RoleKind::Writer, group("orders_writer", false)),
            (RoleKind::Reader, group("orders_reader", false)),
            (RoleKind::Replicator, group("orders_replicator", false)),
        ],
        members: Vec::new(),
        others: vec![RoleFacts {
            name: "app".into(),
            exists: true,
            can_login: true,
            inherit: true,
            ..RoleFacts::default()
        }],
    }
}

fn lines(findings: Vec<Finding>) -> Vec<String> {
    findings.into_iter().map(|f| f.line).collect()
}

fn request(state: &AccessState) -> Request {
    Request {
        groups: state
            .groups
            .iter()
            .map(|(k, g)| (*k, g.name.clone()))
            .collect(),
        add: vec![(RoleKind::Writer, "app".into())],
        ..Request::default()
    }
}

/// The state after the statements of [`plan`] on [`fresh`], written out by hand.
fn granted() -> AccessState {
    let mut state = fresh();
    for (_, g) in &mut state.groups {
        *g = group(&g.name, true);
    }
    let grant = |state: &mut AccessState, name: &str, grantee: &str, privileges: &[&str]| {
        let object = state.objects.iter_mut().find(|o| o.name == name).unwrap();
        object.held.extend(held(grantee, privileges));
    };
    state.objects[0].held.retain(|h| h.grantee != "PUBLIC");
    for g in ["orders_writer", "orders_reader", "orders_replicator"] {
        grant(&mut state, "orders", g, &["CONNECT"]);
    }
    grant(
        &mut state,
        "insert_events(text)",
        "orders_writer",
        &["EXECUTE"],
    );
    grant(
        &mut state,
        "append_events(jsonb[], integer[])",
        "orders_writer",
        &["EXECUTE"],
    );
    grant(&mut state, "events", "orders_reader", &["SELECT"]);
    grant(
        &mut state,
        "events",
        "orders_replicator",
        &["REFERENCES (event)", "SELECT"],
    );
    state.members.push(Member {
        group: "orders_writer".into(),
        member: "app".into(),
        can_login: true,
        inherits: true,
        grantors: vec!["owner".into()],
    });
    state.recorded = state
        .groups
        .iter()
        .map(|(k, g)| (*k, g.name.clone()))
        .collect();
    state
}

#[test]
fn a_fresh_store_gets_its_roles_its_hardening_and_its_record() {
    let state = fresh();
    let plan = plan(&state, &request(&state)).unwrap();
    assert_eq!(
        plan.statements,
        [
            r#"CREATE ROLE "orders_writer" NOLOGIN"#,
            r#"CREATE ROLE "orders_reader" NOLOGIN"#,
            r#"CREATE ROLE "orders_replicator" NOLOGIN"#,
            "REVOKE CONNECT, TEMPORARY ON DATABASE orders FROM PUBLIC",
            r#"GRANT CONNECT ON DATABASE orders TO "orders_writer""#,
            r#"GRANT EXECUTE ON FUNCTION public.insert_events(text) TO "orders_writer""#,
            r#"GRANT EXECUTE ON FUNCTION public.append_events(jsonb[], integer[]) TO "orders_writer""#,
            r#"GRANT CONNECT ON DATABASE orders TO "orders_reader""#,
            r#"GRANT SELECT ON TABLE public.events TO "orders_reader""#,
            r#"GRANT CONNECT ON DATABASE orders TO "orders_replicator""#,
            r#"GRANT REFERENCES (event), SELECT ON TABLE public.events TO "orders_replicator""#,
            r#"GRANT "orders_writer" TO "app" WITH INHERIT TRUE"#,
            "INSERT INTO public.slate_roles (kind, role_name) VALUES ('writer', 'orders_writer') ON CONFLICT (kind) DO UPDATE SET role_name = EXCLUDED.role_name",
            "INSERT INTO public.slate_roles (kind, role_name) VALUES ('reader', 'orders_reader') ON CONFLICT (kind) DO UPDATE SET role_name = EXCLUDED.role_name",
            "INSERT INTO public.slate_roles (kind, role_name) VALUES ('replicator', 'orders_replicator') ON CONFLICT (kind) DO UPDATE SET role_name = EXCLUDED.role_name",
        ]
    );
    // As status reads it (no recorded groups): the hardening is a finding, a hint.
    let mut unmanaged = state.clone();
    unmanaged.groups.clear();
    assert_eq!(
        lines(check(&unmanaged)),
        [r#"PUBLIC (every role) holds CONNECT, TEMPORARY on database "orders""#]
    );
}

#[test]
fn a_store_as_grant_leaves_it_plans_nothing_and_shows_nothing() {
    let state = granted();
    assert_eq!(plan(&state, &request(&state)).unwrap(), Plan::default());
    assert!(check(&state).is_empty(), "{:?}", check(&state));
}

#[test]
fn every_stray_privilege_is_named_and_a_group_member_loses_its_own() {
    let mut state = granted();
    let add = |state: &mut AccessState, name: &str, grantee: &str, privileges: &[&str]| {
        let object = state.objects.iter_mut().find(|o| o.name == name).unwrap();
        object.held.extend(held(grantee, privileges));
    };
    add(&mut state, "events", "app", &["INSERT", "SELECT"]);
    add(&mut state, "id", "legacy", &["UPDATE"]);
    add(&mut state, "events", "orders_writer", &["SELECT"]);
    add(
        &mut state,
        "restore_events(text, text, text, text, integer)",
        "PUBLIC",
        &["EXECUTE"],
    );
    add(
        &mut state,
        "restore_events(text, text, text, text, integer)",
        "ops",
        &["EXECUTE"],
    );
    add(&mut state, "orders", "PUBLIC", &["CONNECT"]);
    assert_eq!(
        lines(check(&state)),
        [
            r#"PUBLIC (every role) holds CONNECT on database "orders""#,
            r#"the writer role "orders_writer" holds SELECT on events, beyond its part"#,
            r#"role "app", a writer, holds INSERT, SELECT on events: a writer appends through insert_events and holds nothing on the tables"#,
            r#"role "legacy" holds UPDATE on id: only the owner may change the store's tables"#,
            "PUBLIC (every role) may execute restore_events(text, text, text, text, integer)",
            r#"role "ops" may execute restore_events(text, text, text, text, integer), which only the owner may"#,
        ]
    );
    let plan = plan(&state, &request(&state)).unwrap();
    assert_eq!(
        plan.statements,
        [
            "REVOKE CONNECT ON DATABASE orders FROM PUBLIC",
            "REVOKE EXECUTE ON FUNCTION public.restore_events(text, text, text, text, integer) FROM PUBLIC",
            r#"REVOKE SELECT ON TABLE public.events FROM "orders_writer""#,
            r#"REVOKE INSERT, SELECT ON TABLE public.events FROM "app""#,
        ],
        "legacy and ops are in no group: left to the operator"
    );
}

#[test]
fn names_are_quoted_and_too_long_ones_refused() {
    let mut state = fresh();
    state.groups[0].1 = group(r#"odd"name"#, false);
    let statements = plan(&state, &request(&state)).unwrap().statements;
    assert_eq!(statements[0], r#"CREATE ROLE "odd""name" NOLOGIN"#);
    assert!(statements.contains(
        &r#"INSERT INTO public.slate_roles (kind, role_name) VALUES ('writer', 'odd"name') ON CONFLICT (kind) DO UPDATE SET role_name = EXCLUDED.role_name"#.to_string()
    ));
    assert_eq!(
        RoleKind::Writer.default_name("orders").unwrap(),
        "orders_writer"
    );
    let error = RoleKind::Replicator
        .default_name(&"s".repeat(60))
        .unwrap_err();
    assert!(error.contains("--replicator-role"), "{error}");
}

#[test]
fn what_the_runner_lacks_is_refused_before_any_statement() {
    let mut state = fresh();
    state.runner.createrole = false;
    assert!(
        matches!(plan(&state, &request(&state)), Err(Problem::Privilege(m)) if m.contains("CREATEROLE"))
    );

    let mut state = granted();
    state.groups[0].1.administered = false;
    let mut asked = request(&state);
    asked.add = vec![(RoleKind::Writer, "app2".into())];
    state.others.push(RoleFacts {
        name: "app2".into(),
        exists: true,
        can_login: true,
        inherit: true,
        ..RoleFacts::default()
    });
    assert!(
        matches!(plan(&state, &asked), Err(Problem::Privilege(m)) if m.contains("ADMIN OPTION"))
    );

    let mut state = granted();
    state.groups[1].1.can_login = true;
    assert!(
        matches!(plan(&state, &request(&state)), Err(Problem::Role(m)) if m.contains("can log in"))
    );

    let mut state = fresh();
    state.others.clear();
    assert!(
        matches!(plan(&state, &request(&state)), Err(Problem::Role(m)) if m.contains("does not exist"))
    );
}

#[test]
fn the_owner_is_never_made_a_writer_and_a_stranger_grantors_privilege_is_refused() {
    let mut state = granted();
    state.others[0].wider = vec!["owner".into()];
    let refused = plan(&state, &request(&state));
    assert!(matches!(refused, Err(Problem::Role(m)) if m.contains("owns the store")));

    let mut state = granted();
    state.objects[1].held.push(Held {
        grantee: "orders_writer".into(),
        privilege: "UPDATE".into(),
        grantor: "someone".into(),
        grantable: false,
    });
    let refused = plan(&state, &request(&state));
    assert!(matches!(refused, Err(Problem::Privilege(m)) if m.contains(r#"granted by "someone""#)));
}

#[test]
fn from_16_a_removal_revokes_each_grantors_membership() {
    let mut state = granted();
    state.members[0].grantors = vec!["owner".into(), "ops".into()];
    let mut asked = request(&state);
    asked.add.clear();
    asked.remove = vec!["app".into()];
    assert_eq!(
        plan(&state, &asked).unwrap().statements,
        [
            r#"REVOKE "orders_writer" FROM "app" GRANTED BY "owner""#,
            r#"REVOKE "orders_writer" FROM "app" GRANTED BY "ops""#,
        ]
    );
}

#[test]
fn a_table_level_revoke_is_followed_by_the_column_privilege_it_took_along() {
    let mut state = granted();
    state.objects[1]
        .held
        .extend(held("orders_replicator", &["REFERENCES"]));
    state.objects[1]
        .held
        .extend(held(PUBLIC, &["INSERT", "SELECT"]));
    assert_eq!(
        plan(&state, &request(&state)).unwrap().statements,
        [
            "REVOKE INSERT ON TABLE public.events FROM PUBLIC",
            r#"REVOKE REFERENCES ON TABLE public.events FROM "orders_replicator""#,
            r#"GRANT REFERENCES (event) ON TABLE public.events TO "orders_replicator""#,
        ]
    );
}

#[test]
fn groups_get_usage_on_public_only_when_public_lost_it_and_never_lose_it() {
    let schema = |acl| object(ObjectKind::Schema, "public", "SCHEMA public", acl);
    let mut state = granted();
    state.objects.push(schema(held(PUBLIC, &["USAGE"])));
    state
        .objects
        .last_mut()
        .unwrap()
        .held
        .extend(held("orders_reader", &["USAGE"]));
    assert_eq!(plan(&state, &request(&state)).unwrap(), Plan::default());

    let mut state = granted();
    state
        .objects
        .push(schema(held("owner", &["CREATE", "USAGE"])));
    assert_eq!(
        plan(&state, &request(&state)).unwrap().statements,
        [
            r#"GRANT USAGE ON SCHEMA public TO "orders_writer""#,
            r#"GRANT USAGE ON SCHEMA public TO "orders_reader""#,
            r#"GRANT USAGE ON SCHEMA public TO "orders_replicator""#,
        ]
    );
}

#[test]
fn a_group_with_the_owners_rights_is_refused_not_stripped() {
    let mut state = granted();
    state.groups[0].1.wider = vec!["owner".into()];
    assert!(
        matches!(plan(&state, &request(&state)), Err(Problem::Role(m)) if m.contains("cannot be made one"))
    );
}
