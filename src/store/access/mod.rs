//! Who may do what with a store: the group roles `grant` manages (writer, reader, replicator),
//! the privileges PostgreSQL records on the store's database, tables and functions, and the
//! two things made of them: the statements that bring them to what each role needs
//! ([`plan`]), and what `status` reports as drift ([`check`]).
//!
//! Everything here is read from the catalog into an [`AccessState`] first; planning and
//! checking are pure functions of it, so a dry run prints exactly what a run executes.

mod check;
mod plan;
mod read;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::identifier::MAX_IDENTIFIER_BYTES;
use crate::store::layout::Layout;

pub use check::{check, About, Finding};
pub use plan::{plan, Plan, Problem, Request};
pub use read::{read, recorded, sessions_without_connect};

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
        if name.starts_with("pg_") {
            return Err(format!(
                "the {self} role's default name {name:?} starts with pg_, which PostgreSQL reserves: name it with --{self}-role"
            ));
        }
        if name.len() > MAX_IDENTIFIER_BYTES {
            return Err(format!(
                "the {self} role's default name {name:?} is {} bytes long, over PostgreSQL's {MAX_IDENTIFIER_BYTES}: name it with --{self}-role",
                name.len()
            ));
        }
        Ok(name)
    }

    /// The privileges the group holds on one of the store's tables. The replicator's
    /// REFERENCES is on the `event` column only: it makes `information_schema.triggers` show the
    /// store's triggers, and no foreign key can point at a column without a unique index, so it
    /// cannot be used to lock `events` or block its deletes.
    pub fn table_privileges(self, table: &str) -> &'static [&'static str] {
        match (self, table) {
            (RoleKind::Reader, "events") => &["SELECT"],
            (RoleKind::Replicator, "events") => &["REFERENCES (event)", "SELECT"],
            _ => &[],
        }
    }

    /// Whether the group executes the function (`name(argument types)`).
    pub fn executes(self, function: &str) -> bool {
        self == RoleKind::Writer && WRITE_FUNCTIONS.contains(&function)
    }
}

/// Who holds a privilege: PUBLIC (every role) is written `PUBLIC`; a role of that name is
/// refused by the command line (see `cli::grant`).
pub const PUBLIC: &str = "PUBLIC";

/// One privilege recorded on an object: who holds it and which.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    pub grantee: String,
    /// PostgreSQL's name: `SELECT`, `CONNECT`, `TEMPORARY`, `EXECUTE`, ...; a column's
    /// privilege carries the column: `REFERENCES (event)`.
    pub privilege: String,
    /// Who granted it: only that role (or one acting as it) can revoke it.
    pub grantor: String,
    /// Held WITH GRANT OPTION: the holder may pass it on.
    pub grantable: bool,
}

/// What kind of object a privilege is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectKind {
    Database,
    /// Schema `public`, where the store lives.
    Schema,
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

    /// How `grantee` holds `privilege`: the grants, one per grantor.
    pub fn grants_of<'a>(
        &'a self,
        grantee: &'a str,
        privilege: &'a str,
    ) -> impl Iterator<Item = &'a Held> {
        self.held
            .iter()
            .filter(move |h| h.grantee == grantee && h.privilege == privilege)
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
        ObjectKind::Function | ObjectKind::Schema => BTreeSet::new(),
    }
}

/// A privilege that only reads (`SELECT`, `SELECT (column)`): no harm to the store.
fn reads_only(privilege: &str) -> bool {
    privilege == "SELECT" || privilege.starts_with("SELECT (")
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
    /// Roles whose rights it has beyond its part, by inheritance or SET ROLE: the owner of one
    /// of the store's objects, or `pg_write_all_data`, `pg_maintain`.
    pub wider: Vec<String>,
}

/// A member of one of the store's group roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub group: String,
    pub member: String,
    pub can_login: bool,
    /// Whether the membership passes the group's rights on without SET ROLE.
    pub inherits: bool,
    /// Who granted it (from 16 a membership can be granted by several roles, each revoked on
    /// its own).
    pub grantors: Vec<String>,
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

    /// The owners of the store's objects (not dblink's).
    pub fn owners(&self) -> BTreeSet<&str> {
        self.objects
            .iter()
            .filter(|o| !o.dblink)
            .map(|o| o.owner.as_str())
            .collect()
    }

    /// The store's database.
    pub fn database_object(&self) -> Option<&Object> {
        self.objects.iter().find(|o| o.kind == ObjectKind::Database)
    }

    /// `member`'s membership in `group`, if any.
    pub fn is_member(&self, group: &str, member: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.group == group && m.member == member)
    }
}

#[cfg(test)]
mod tests;
