//! The audit behind `status`, `migrate`, `adopt` and `create --if-not-exists`: which migrations a
//! database has applied, whether they match this build's, and whether its objects are exactly
//! what those migrations create.

use serde::Serialize;
use tokio_postgres::Client;

mod compare;

use crate::error::{Error, Refusal};
use crate::pg::PgFailure;
use crate::store::access;
use crate::store::catalog;
use crate::store::layout::{Layout, HISTORY_TABLE};
use compare::{check_id_counter, compare_history, compare_objects, detect_layout, join_versions};
use tokio_postgres::error::SqlState;

/// How a migration of the layout stands in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum MigrationState {
    /// Recorded with this build's name and checksum.
    Applied,
    /// Not recorded yet.
    Pending,
    /// Recorded with another name or checksum.
    Divergent,
    /// Recorded, but this build has no such version.
    Unknown,
}

/// One row of the migrations table.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationRow {
    pub version: i32,
    pub name: String,
    pub state: MigrationState,
    /// When it was applied (RFC 3339), if recorded.
    pub applied_on: Option<String>,
    /// The checksum recorded in the database.
    pub checksum: Option<String>,
    /// The checksum of this build's migration.
    pub expected_checksum: Option<String>,
}

/// How an object stands compared with what the applied migrations create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ObjectState {
    /// Present and as defined.
    Ok,
    /// Expected, absent.
    Missing,
    /// Present with another definition (or, for the id counter, another value).
    Changed,
    /// Present, not created by the layout: harmless, reported.
    Extra,
    /// Created by a migration that is not applied yet.
    Pending,
    /// Present, not created by the layout, and changes how the store behaves: a trigger, rule,
    /// policy or constraint on one of the layout's tables. Drift.
    Unexpected,
}

/// One row of the objects table.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectRow {
    pub kind: String,
    pub name: String,
    pub state: ObjectState,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

/// The overall result, each with its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Verdict {
    /// Every migration applied and every object verified.
    UpToDate,
    /// Verified so far, with migrations still to apply.
    Pending,
    /// History or objects differ from this build's layout.
    Drift,
    /// No history table: a slate database made by the original tool (adopt it).
    Unmanaged,
    /// Neither a history table nor an events table.
    NotSlate,
}

impl Verdict {
    /// Why a command refuses a database with this verdict (`None` when up to date).
    pub fn refusal(self) -> Option<Refusal> {
        match self {
            Verdict::UpToDate => None,
            Verdict::Pending => Some(Refusal::Pending),
            Verdict::Drift => Some(Refusal::Drift),
            Verdict::Unmanaged => Some(Refusal::Unmanaged),
            Verdict::NotSlate => Some(Refusal::NotSlate),
        }
    }
}

/// The store's grants held against what its roles need.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Grants {
    /// Whether the store opted in (`grant` recorded its roles): then the findings are drift.
    pub managed: bool,
    pub roles: Vec<access::GroupRow>,
    /// Privileges beyond or short of the expected, one line each.
    pub findings: Vec<access::Finding>,
}

/// The whole audit of one database (the body of `status --format json`).
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub database: String,
    /// The detected layout; null when the database is not a slate event store.
    pub layout: Option<Layout>,
    /// The store as a whole: the layout's verdict, or drift when the grants of a store that
    /// opted in differ from its roles' parts.
    pub verdict: Verdict,
    /// The history and objects alone: what migrate, adopt, restore and replicate go by.
    pub layout_verdict: Verdict,
    /// The highest version recorded as applied that this build knows.
    pub applied_version: i32,
    /// The highest version this build has for the layout.
    pub latest_version: i32,
    pub migrations: Vec<MigrationRow>,
    pub objects: Vec<ObjectRow>,
    /// Owner and grants of the layout's tables and functions, as PostgreSQL records them.
    pub access: Vec<catalog::Access>,
    /// The grants checked against the store's roles.
    pub grants: Grants,
    /// Sentences for people: why the verdict, what to do.
    pub notes: Vec<String>,
}

impl Audit {
    /// Migrations not applied yet.
    pub fn pending_versions(&self) -> Vec<i32> {
        self.migrations
            .iter()
            .filter(|m| m.state == MigrationState::Pending)
            .map(|m| m.version)
            .collect()
    }

    /// One line per problem (divergent or unknown migrations, missing or changed objects).
    pub fn problems(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for m in &self.migrations {
            match m.state {
                MigrationState::Divergent => lines.push(format!(
                    "migration V{} {} differs from this build's (recorded checksum {}, expected {})",
                    m.version,
                    m.name,
                    m.checksum.as_deref().unwrap_or("?"),
                    m.expected_checksum.as_deref().unwrap_or("?")
                )),
                MigrationState::Unknown => lines.push(format!(
                    "migration V{} {} is recorded but unknown to this build (a newer init-slate-db applied it?)",
                    m.version, m.name
                )),
                _ => {}
            }
        }
        for o in &self.objects {
            match o.state {
                ObjectState::Missing => lines.push(format!("{} {} is missing", o.kind, o.name)),
                ObjectState::Unexpected => lines.push(format!(
                    "{} {} is not part of the layout and changes how the store behaves: {}",
                    o.kind,
                    o.name,
                    o.actual.as_deref().unwrap_or("?")
                )),
                ObjectState::Changed => lines.push(format!(
                    "{} {} is changed: expected {}, found {}",
                    o.kind,
                    o.name,
                    o.expected.as_deref().unwrap_or("?"),
                    o.actual.as_deref().unwrap_or("?")
                )),
                _ => {}
            }
        }
        lines
    }

    /// The error a command refusing this database reports: the verdict's exit code, a summary,
    /// and the differences.
    pub fn refusal(&self, what: &str) -> Error {
        let mut message = format!("{what}: database \"{}\" ", self.database);
        message.push_str(match self.layout_verdict {
            Verdict::NotSlate => "is not a slate event store (no events table, no history table)",
            Verdict::Unmanaged => "has no history table (made by the original init-slate-db?): run init-slate-db adopt first",
            Verdict::Drift => "has drifted from its layout",
            Verdict::Pending => "has pending migrations",
            Verdict::UpToDate => "is up to date",
        });
        let problems = self.problems();
        if !problems.is_empty() {
            message.push_str(": ");
            message.push_str(&problems.join("; "));
        }
        Error::Refused {
            message,
            refusal: self.layout_verdict.refusal().unwrap_or(Refusal::Drift),
        }
    }

    /// `status`'s error for a verdict other than up to date: its first note, and its code.
    pub fn verdict_error(&self) -> Error {
        Error::Refused {
            message: self
                .notes
                .first()
                .cloned()
                .unwrap_or_else(|| "not up to date".into()),
            refusal: self.verdict.refusal().unwrap_or(Refusal::Drift),
        }
    }
}

/// A history row as refinery stores it.
pub(super) struct HistoryRow {
    version: i32,
    name: String,
    applied_on: String,
    checksum: String,
}

/// Audits the database `client` is connected to. `layout_hint` (from `-t`) is used only when
/// the layout cannot be detected.
pub async fn audit(
    client: &Client,
    database: &str,
    layout_hint: Option<Layout>,
) -> Result<Audit, Error> {
    let query_error = |step: &str| {
        let step = step.to_string();
        move |e: tokio_postgres::Error| {
            let failure = PgFailure::from(&e);
            if failure.is(&SqlState::INSUFFICIENT_PRIVILEGE) {
                return Error::MissingPrivilege(format!(
                    "{step} of database \"{database}\" was refused: {failure}; the audit needs CONNECT on the database and SELECT on {HISTORY_TABLE}, events and id (GRANT SELECT ON {HISTORY_TABLE}, events, id TO the role)"
                ));
            }
            Error::Query {
                step: format!("{step} of database \"{database}\""),
                failure,
            }
        }
    };
    // The same verdict whatever the role's search_path: the layout lives in public, and the
    // catalog functions name objects relative to the path.
    client
        .batch_execute("SET search_path = public")
        .await
        .map_err(query_error("setting the search path"))?;
    let has_history: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("public.{HISTORY_TABLE}")],
        )
        .await
        .map_err(query_error("looking for the history table"))?
        .get(0);
    let history = if has_history {
        client
            .query(&format!("SELECT version, name, applied_on, checksum FROM public.{HISTORY_TABLE} ORDER BY version"), &[])
            .await
            .map_err(query_error("reading the history table"))?
            .iter()
            .map(|row| HistoryRow {
                version: row.get(0),
                name: row.get::<_, Option<String>>(1).unwrap_or_default(),
                applied_on: row.get::<_, Option<String>>(2).unwrap_or_default(),
                checksum: row.get::<_, Option<String>>(3).unwrap_or_default(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let actual = catalog::read(client)
        .await
        .map_err(query_error("reading the catalog"))?;

    let Some(layout) =
        detect_layout(&history, &actual).or(if has_history { layout_hint } else { None })
    else {
        return Ok(Audit {
            database: database.into(),
            layout: None,
            verdict: Verdict::NotSlate,
            layout_verdict: Verdict::NotSlate,
            applied_version: 0,
            latest_version: 0,
            migrations: Vec::new(),
            objects: Vec::new(),
            access: Vec::new(),
            grants: Grants::default(),
            notes: vec![format!("database \"{database}\" has neither an events table nor a {HISTORY_TABLE} table: it is not a slate event store")],
        });
    };

    let migrations = compare_history(layout, &history);
    let applied_version = migrations
        .iter()
        .filter(|m| m.state == MigrationState::Applied)
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    // Without history (the original tool's databases) compare with what the original made.
    let expected_version = if has_history {
        applied_version
    } else {
        layout.original_version()
    };
    let mut objects = compare_objects(
        &catalog::expected(layout, expected_version),
        &catalog::expected(layout, layout.latest_version()),
        &actual,
    );
    if layout == Layout::Source && actual.iter().any(|o| o.kind == "table" && o.name == "id") {
        objects.push(
            check_id_counter(client)
                .await
                .map_err(query_error("checking the id table"))?,
        );
    }

    let drift = migrations
        .iter()
        .any(|m| matches!(m.state, MigrationState::Divergent | MigrationState::Unknown))
        || objects.iter().any(|o| {
            matches!(
                o.state,
                ObjectState::Missing | ObjectState::Changed | ObjectState::Unexpected
            )
        });
    let pending = migrations
        .iter()
        .any(|m| m.state == MigrationState::Pending);
    let verdict = if !has_history {
        Verdict::Unmanaged
    } else if drift {
        Verdict::Drift
    } else if pending {
        Verdict::Pending
    } else {
        Verdict::UpToDate
    };
    let mut notes = Vec::new();
    match verdict {
        Verdict::UpToDate => notes.push(format!(
            "up to date: {} migration(s) applied, {} object(s) verified",
            applied_version,
            objects.iter().filter(|o| o.state == ObjectState::Ok).count()
        )),
        Verdict::Pending => notes.push(format!(
            "pending: V{} not applied yet; run init-slate-db migrate -d {database}",
            join_versions(&migrations, MigrationState::Pending)
        )),
        Verdict::Drift => notes.push("drift: the history or the objects differ from this build's layout (see the rows marked divergent, unknown, missing or changed)".into()),
        Verdict::Unmanaged => notes.push(format!(
            "unmanaged: no {HISTORY_TABLE} table; objects compared with what the original init-slate-db created (V1-V{}); run init-slate-db adopt -d {database}",
            layout.original_version()
        )),
        Verdict::NotSlate => {}
    }
    let extras = objects
        .iter()
        .filter(|o| o.state == ObjectState::Extra)
        .count();
    if extras > 0 {
        notes.push(format!(
            "{extras} extra object(s) not created by the layout: harmless, listed for review"
        ));
    }
    let access = catalog::access(
        client,
        &catalog::latest_names(layout, "table"),
        &catalog::latest_names(layout, "function"),
    )
    .await
    .map_err(query_error("reading owners and grants"))?;
    let grants = grants(client, layout, database)
        .await
        .map_err(query_error("reading the store's roles and grants"))?;
    let overall = if grants.managed
        && !grants.findings.is_empty()
        && matches!(verdict, Verdict::UpToDate | Verdict::Pending)
    {
        notes.insert(0, format!(
            "drift: the grants differ from what the store's roles need: {}; run init-slate-db grant -d {database} to put them back, or revoke by hand",
            grants
                .findings
                .iter()
                .map(|f| f.line.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
        Verdict::Drift
    } else {
        verdict
    };
    if !grants.managed && has_history && !grants.findings.is_empty() {
        notes.push(format!(
            "grants not managed: reported, not verified ({} finding(s) below); init-slate-db grant -d {database} sets up writer, reader and replicator roles and hardens the store",
            grants.findings.len()
        ));
    }
    Ok(Audit {
        database: database.into(),
        layout: Some(layout),
        verdict: overall,
        layout_verdict: verdict,
        applied_version,
        latest_version: layout.latest_version(),
        migrations,
        objects,
        access,
        grants,
        notes,
    })
}

/// The store's recorded group roles, their members, and the findings against its grants.
async fn grants(
    client: &Client,
    layout: Layout,
    database: &str,
) -> Result<Grants, tokio_postgres::Error> {
    let state = access::read(client, layout, database, None, &[]).await?;
    Ok(Grants {
        managed: state.managed(),
        roles: state.group_rows(),
        findings: access::check(&state),
    })
}
