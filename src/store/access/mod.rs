//! Who may do what with a store: the group roles `grant` manages (writer, reader, replicator),
//! the privileges PostgreSQL records on the store's database, tables and functions, and the
//! two things made of them: the statements that bring them to what each role needs
//! ([`plan`]), and what `status` reports as drift ([`check`]).
//!
//! Everything here is read from the catalog into an [`AccessState`] first; planning and
//! checking are pure functions of it, so a dry run prints exactly what a run executes.

mod check;
mod plan;

use std::collections::BTreeSet;

use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::identifier::MAX_IDENTIFIER_BYTES;
use crate::store::layout::Layout;

pub use check::{check, Finding};
pub use plan::{plan, Plan, Problem, Request};

/// The table in which a store records the group roles `grant` manages (source V12,
/// destination V2). Empty: the store never opted in.
pub const RECORD_TABLE: &str = "slate_roles";

/// The part a group role plays for a store.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum RoleKind {
    /// Appends through `insert_events` and `append_events`; holds nothing on the tables.
    Writer,
    /// SELECTs `events` (and LISTENs on `eventsinsert`, which needs no privilege).
    Reader,
    /// Reads what a replicator reads: SELECT on `events`, and REFERENCES, the least privilege
    /// other than SELECT, so that `information_schema.triggers` shows the store's triggers to
    /// the Node replicator's start-up check.
    Replicator,
}

/// The layout's functions a writer may execute (and nobody else needs).
pub const WRITE_FUNCTIONS: &[&str] = &["append_events(jsonb[], integer[])", "insert_events(text)"];

impl RoleKind {
    /// The kinds a layout has: a replica is written by its subscription only, so a destination
    /// has readers alone.
    pub fn of(layout: Layout) -> &'static [RoleKind] {
        match layout {
            Layout::Source => &[RoleKind::Writer, RoleKind::Reader, RoleKind::Replicator],
            Layout::Destination => &[RoleKind::Reader],
        }
    }

    /// The group's default name: `<store>_<kind>` (`orders_writer`), or why there is none.
    pub fn default_name(self, store: &str) -> Result<String, String> {
        let name = format!("{store}_{self}");
        if name.len() > MAX_IDENTIFIER_BYTES {
            return Err(format!(
                "the {self} role's default name {name:?} is {} bytes long, over PostgreSQL's {MAX_IDENTIFIER_BYTES}: name it with --{self}-role",
                name.len()
            ));
        }
        Ok(name)
    }

    /// The privileges the group holds on one of the store's tables.
    pub fn table_privileges(self, table: &str) -> &'static [&'static str] {
        match (self, table) {
            (RoleKind::Reader, "events") => &["SELECT"],
            (RoleKind::Replicator, "events") => &["REFERENCES", "SELECT"],
            _ => &[],
        }
    }

    /// Whether the group executes the function (`name(argument types)`).
    pub fn executes(self, function: &str) -> bool {
        self == RoleKind::Writer && WRITE_FUNCTIONS.contains(&function)
    }
}

/// One privilege recorded on an object: who holds it (`PUBLIC` for everyone) and which.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    pub grantee: String,
    /// PostgreSQL's name: `SELECT`, `CONNECT`, `TEMPORARY`, `EXECUTE`, ...
    pub privilege: String,
}

/// What kind of object a privilege is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectKind {
    Database,
    Table,
    Function,
}

/// The store's database, one of its tables, or one of its (or dblink's) functions, with the
/// privileges held on it.
#[derive(Debug, Clone)]
pub struct Object {
    pub kind: ObjectKind,
    /// `orders`, `events`, `insert_events(text)`.
    pub name: String,
    /// How GRANT names it: `DATABASE "orders"`, `TABLE public.events`,
    /// `FUNCTION public.insert_events(text)`.
    pub target: String,
    pub owner: String,
    /// One of dblink's functions.
    pub dblink: bool,
    /// Whether the running role is, or is a member of, its owner (or a superuser): then it may
    /// grant and revoke on it.
    pub runner_owns: bool,
    pub held: Vec<Held>,
}

impl Object {
    /// The privileges `grantee` holds on it directly.
    pub fn held_by(&self, grantee: &str) -> BTreeSet<&str> {
        self.held
            .iter()
            .filter(|h| h.grantee == grantee)
            .map(|h| h.privilege.as_str())
            .collect()
    }

    /// Whether only its owner (and superusers) should execute it: `restore_events`, the
    /// trigger functions, dblink's.
    pub fn owner_only(&self) -> bool {
        self.kind == ObjectKind::Function && !WRITE_FUNCTIONS.contains(&self.name.as_str())
    }
}

/// The privileges a group of `kind` holds on `object` when all is as it should be.
fn expected(kind: RoleKind, object: &Object) -> BTreeSet<&'static str> {
    match object.kind {
        ObjectKind::Database => BTreeSet::from(["CONNECT"]),
        ObjectKind::Table => kind
            .table_privileges(&object.name)
            .iter()
            .copied()
            .collect(),
        ObjectKind::Function if kind.executes(&object.name) => BTreeSet::from(["EXECUTE"]),
        ObjectKind::Function => BTreeSet::new(),
    }
}

/// A role, as far as granting is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleFacts {
    pub name: String,
    pub exists: bool,
    pub can_login: bool,
    pub superuser: bool,
    pub replication: bool,
    /// Whether it uses its groups' rights without SET ROLE (rolinherit).
    pub inherit: bool,
    /// Whether the running role may grant membership in it (PostgreSQL 16: ADMIN OPTION;
    /// before: also CREATEROLE), or change its attributes.
    pub administered: bool,
}

/// A member of one of the store's group roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub group: String,
    pub member: String,
    pub can_login: bool,
    /// Whether the membership passes the group's rights on without SET ROLE.
    pub inherits: bool,
}

/// The role running the command.
#[derive(Debug, Clone, Default)]
pub struct Runner {
    pub name: String,
    pub superuser: bool,
    pub createrole: bool,
    pub replication: bool,
    /// `server_version_num`.
    pub server_version: i32,
    /// Whether it is, or is a member of, the owner of the database and of every table and
    /// function (not dblink's) listed: then it may grant on them.
    pub acts_as_owner: bool,
}

/// A group role of the store, and who is in it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    pub kind: RoleKind,
    pub name: String,
    pub exists: bool,
    /// Roles that use its rights, sorted.
    pub members: Vec<String>,
}

/// Everything [`plan`] and [`check`] look at, read in one go.
#[derive(Debug, Clone)]
pub struct AccessState {
    pub layout: Layout,
    pub database: String,
    pub runner: Runner,
    pub objects: Vec<Object>,
    /// The store's record: which role plays which part (empty: never opted in).
    pub recorded: Vec<(RoleKind, String)>,
    /// The group roles looked at, by kind.
    pub groups: Vec<(RoleKind, RoleFacts)>,
    /// Members of those groups (not the running role's own ADMIN-only grant on 16+).
    pub members: Vec<Member>,
    /// Other roles named (login roles to add or remove).
    pub others: Vec<RoleFacts>,
}

impl AccessState {
    /// Whether the store opted in: `grant` has recorded its roles.
    pub fn managed(&self) -> bool {
        !self.recorded.is_empty()
    }

    /// The groups looked at, with their members.
    pub fn group_rows(&self) -> Vec<GroupRow> {
        self.groups
            .iter()
            .map(|(kind, group)| GroupRow {
                kind: *kind,
                name: group.name.clone(),
                exists: group.exists,
                members: self
                    .members
                    .iter()
                    .filter(|m| m.group == group.name)
                    .map(|m| m.member.clone())
                    .collect(),
            })
            .collect()
    }

    /// The group playing `kind`, if looked at.
    pub fn group(&self, kind: RoleKind) -> Option<&RoleFacts> {
        self.groups.iter().find(|(k, _)| *k == kind).map(|(_, g)| g)
    }

    /// Facts about a role named on the command line.
    pub fn other(&self, name: &str) -> Option<&RoleFacts> {
        self.others.iter().find(|r| r.name == name)
    }

    /// The store's database.
    pub fn database_object(&self) -> Option<&Object> {
        self.objects.iter().find(|o| o.kind == ObjectKind::Database)
    }

    /// Whether `member` is in `group` with rights it can use.
    pub fn is_member(&self, group: &str, member: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.group == group && m.member == member)
    }
}

/// The store's record of its group roles; empty when the table is missing (a store not yet
/// migrated to the version that has it) or empty.
pub async fn recorded(
    client: &impl GenericClient,
) -> Result<Vec<(RoleKind, String)>, tokio_postgres::Error> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("public.{RECORD_TABLE}")],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!("SELECT kind, role_name FROM public.{RECORD_TABLE} ORDER BY kind"),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let kind: String = r.get(0);
            kind.parse().ok().map(|k| (k, r.get(1)))
        })
        .collect())
}

/// The privileges on the store's database, its tables and functions, and dblink's functions.
const OBJECTS_QUERY: &str = "
WITH objects AS (
    SELECT 1 AS sort, 'database' AS kind, d.datname::text AS name,
           'DATABASE ' || pg_catalog.quote_ident(d.datname) AS target, d.datdba AS owner,
           COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba)) AS acl, false AS dblink
      FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()
    UNION ALL
    SELECT 2, 'table', c.relname::text, 'TABLE public.' || pg_catalog.quote_ident(c.relname), c.relowner,
           COALESCE(c.relacl, pg_catalog.acldefault('r', c.relowner)), false
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname = ANY($1)
    UNION ALL
    SELECT 3, 'function', p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')',
           'FUNCTION ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname)
               || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')',
           p.proowner, COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner)),
           EXISTS (SELECT FROM pg_catalog.pg_depend dep JOIN pg_catalog.pg_extension e ON e.oid = dep.refobjid
                    WHERE dep.classid = 'pg_catalog.pg_proc'::regclass AND dep.objid = p.oid
                      AND dep.deptype = 'e' AND e.extname = 'dblink')
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE (p.pronamespace = 'public'::regnamespace AND p.proname = ANY($2))
        OR p.oid IN (SELECT dep.objid FROM pg_catalog.pg_depend dep JOIN pg_catalog.pg_extension e ON e.oid = dep.refobjid
                      WHERE dep.classid = 'pg_catalog.pg_proc'::regclass AND dep.deptype = 'e' AND e.extname = 'dblink')
)
SELECT o.kind, o.name, o.target, pg_catalog.pg_get_userbyid(o.owner), o.dblink,
       CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
       a.privilege_type,
       pg_catalog.pg_has_role(o.owner, 'MEMBER')
  FROM objects o LEFT JOIN LATERAL pg_catalog.aclexplode(o.acl) a ON true
 ORDER BY o.sort, o.name, 6, 7
";

/// Facts about the roles named.
const ROLES_QUERY: &str = "
SELECT r.rolname::text, r.rolcanlogin, r.rolsuper, r.rolreplication, r.rolinherit,
       pg_catalog.pg_has_role(r.oid, 'MEMBER WITH ADMIN OPTION')
  FROM pg_catalog.pg_roles r WHERE r.rolname = ANY($1)
";

/// The running role.
const RUNNER_QUERY: &str = "
SELECT current_user::text, r.rolsuper, r.rolcreaterole, r.rolreplication,
       current_setting('server_version_num')::int
  FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
";

/// Members of the groups named. From 16 a membership can pass neither rights nor SET ROLE:
/// the grant CREATE ROLE gives its creator (ADMIN only) is such a one, and is not listed.
fn members_query(server_version: i32) -> &'static str {
    if server_version >= 160000 {
        "SELECT g.rolname::text, m.rolname::text, m.rolcanlogin, am.inherit_option
           FROM pg_catalog.pg_auth_members am
           JOIN pg_catalog.pg_roles g ON g.oid = am.roleid JOIN pg_catalog.pg_roles m ON m.oid = am.member
          WHERE g.rolname = ANY($1) AND (am.inherit_option OR am.set_option)
          ORDER BY 1, 2"
    } else {
        "SELECT g.rolname::text, m.rolname::text, m.rolcanlogin, m.rolinherit
           FROM pg_catalog.pg_auth_members am
           JOIN pg_catalog.pg_roles g ON g.oid = am.roleid JOIN pg_catalog.pg_roles m ON m.oid = am.member
          WHERE g.rolname = ANY($1)
          ORDER BY 1, 2"
    }
}

/// Reads the access state of the store `client` is connected to: `groups` are the group
/// roles to look at by kind, `others` the other roles named.
pub async fn read(
    client: &impl GenericClient,
    layout: Layout,
    database: &str,
    groups: &[(RoleKind, String)],
    others: &[String],
) -> Result<AccessState, tokio_postgres::Error> {
    let latest = crate::store::catalog::expected(layout, layout.latest_version());
    let names = |kind: &str| -> Vec<String> {
        latest
            .iter()
            .filter(|o| o.kind == kind)
            .map(|o| o.name.split('(').next().unwrap_or(&o.name).to_string())
            .collect()
    };
    let row = client.query_one(RUNNER_QUERY, &[]).await?;
    let mut runner = Runner {
        name: row.get(0),
        superuser: row.get(1),
        createrole: row.get(2),
        replication: row.get(3),
        server_version: row.get(4),
        acts_as_owner: true,
    };
    let mut objects: Vec<Object> = Vec::new();
    for row in client
        .query(OBJECTS_QUERY, &[&names("table"), &names("function")])
        .await?
    {
        let name: String = row.get(1);
        let dblink: bool = row.get(4);
        let runner_owns: bool = row.get(7);
        if !dblink && !runner_owns {
            runner.acts_as_owner = false;
        }
        let kind = match row.get::<_, &str>(0) {
            "database" => ObjectKind::Database,
            "table" => ObjectKind::Table,
            _ => ObjectKind::Function,
        };
        if objects.last().map(|o| (o.kind, &o.name)) != Some((kind, &name)) {
            objects.push(Object {
                kind,
                name: name.clone(),
                target: row.get(2),
                owner: row.get(3),
                dblink,
                runner_owns,
                held: Vec::new(),
            });
        }
        if let (Some(grantee), Some(privilege), Some(object)) = (
            row.get::<_, Option<String>>(5),
            row.get::<_, Option<String>>(6),
            objects.last_mut(),
        ) {
            object.held.push(Held { grantee, privilege });
        }
    }
    runner.acts_as_owner |= runner.superuser;

    let group_names: Vec<String> = groups.iter().map(|(_, n)| n.clone()).collect();
    let mut wanted: Vec<String> = group_names.clone();
    wanted.extend(others.iter().cloned());
    let facts: Vec<RoleFacts> = client
        .query(ROLES_QUERY, &[&wanted])
        .await?
        .iter()
        .map(|r| RoleFacts {
            name: r.get(0),
            exists: true,
            can_login: r.get(1),
            superuser: r.get(2),
            replication: r.get(3),
            inherit: r.get(4),
            // Before 16, CREATEROLE may grant any role but a superuser.
            administered: r.get::<_, bool>(5)
                || (runner.server_version < 160000 && runner.createrole && !r.get::<_, bool>(2)),
        })
        .collect();
    let facts_of = |name: &str| {
        facts
            .iter()
            .find(|f| f.name == name)
            .cloned()
            .unwrap_or_else(|| RoleFacts {
                name: name.to_string(),
                ..RoleFacts::default()
            })
    };
    let members = client
        .query(members_query(runner.server_version), &[&group_names])
        .await?
        .iter()
        .map(|r| Member {
            group: r.get(0),
            member: r.get(1),
            can_login: r.get(2),
            inherits: r.get(3),
        })
        .collect();
    Ok(AccessState {
        layout,
        database: database.to_string(),
        objects,
        recorded: recorded(client).await?,
        groups: groups
            .iter()
            .map(|(kind, name)| (*kind, facts_of(name)))
            .collect(),
        members,
        others: others.iter().map(|n| facts_of(n)).collect(),
        runner,
    })
}

/// The sessions on the store's database whose role may no longer connect (after the
/// statements of a run, inside its transaction), for a warning.
pub async fn sessions_without_connect(
    client: &impl GenericClient,
) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT DISTINCT a.usename::text FROM pg_catalog.pg_stat_activity a
              WHERE a.datname = pg_catalog.current_database() AND a.pid <> pg_catalog.pg_backend_pid()
                AND a.usesysid IS NOT NULL
                AND NOT pg_catalog.has_database_privilege(a.usesysid, a.datid, 'CONNECT')
              ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

#[cfg(test)]
mod tests;
