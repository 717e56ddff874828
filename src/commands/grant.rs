//! `grant`: gives a store's writer, reader and replicator group roles exactly what their part
//! needs, hardens the store (PUBLIC keeps no CONNECT or TEMP on it, executes none of its
//! functions), puts login roles into the groups or takes them out, and records the groups in
//! `slate_roles`, which makes `status` verify the store's grants from then on.
//!
//! One transaction under the store's lock: the state is read, the statements planned from it
//! ([`access::plan`]), executed, and the state read again, which must plan nothing more.

use tracing::{info, info_span, warn, Instrument};

use crate::connect::{ConnectionSettings, Connector};
use crate::error::{Error, Refusal};
use crate::lock::Waits;
use crate::output::{self, GrantAction, GrantReport, OutputFormat};
use crate::pg::PgFailure;
use crate::shutdown::Shutdown;
use crate::store::access::{self, About, AccessState, Problem, Request, RoleKind};
use crate::store::audit::Verdict;
use crate::store::layout::Layout;
use crate::store::lifecycle;

use super::lifecycle::guarded_on;

/// Validated settings of `grant`.
pub struct GrantSettings {
    pub database: String,
    /// Group role names given with `--writer-role` and the like.
    pub group_names: Vec<(RoleKind, String)>,
    /// Roles to put into a group (`--writer app`).
    pub add: Vec<(RoleKind, String)>,
    /// Roles to take out of the store's groups.
    pub remove: Vec<String>,
    /// Give the `--replicator` roles the REPLICATION attribute.
    pub replication: bool,
    pub dry_run: bool,
    pub waits: Waits,
    pub format: OutputFormat,
}

/// Runs `grant`.
pub async fn run(
    connection: ConnectionSettings,
    settings: GrantSettings,
    shutdown: &Shutdown,
) -> Result<(), Error> {
    let _guard = shutdown.guard();
    let mut connector = Connector::new(connection)?;
    let report = guarded_on(&mut connector, shutdown, async |connector| {
        grant_connected(connector, &settings)
            .instrument(info_span!("grant", database = %settings.database))
            .await
    })
    .await?;
    output::emit(&report, settings.format)
}

async fn grant_connected(
    connector: &mut Connector,
    settings: &GrantSettings,
) -> Result<GrantReport, Error> {
    let target = lifecycle::Target {
        database: &settings.database,
        maintenance_db: lifecycle::DEFAULT_MAINTENANCE_DB,
        layout: None,
        dry_run: settings.dry_run,
        waits: settings.waits,
    };
    let (mut client, audit) = lifecycle::open(connector, &target).await?;
    let database = settings.database.as_str();
    match audit.layout_verdict {
        Verdict::UpToDate => {}
        Verdict::Pending => {
            return Err(Error::Refused {
                message: format!(
                    "grant refused: database \"{database}\" has pending migrations (the store records its roles from source V12, destination V2): run init-slate-db migrate -d {database} first"
                ),
                refusal: Refusal::Pending,
            })
        }
        _ => return Err(audit.refusal("grant refused")),
    }
    let layout = audit
        .layout
        .ok_or_else(|| Error::Internal("an up-to-date store without a layout".into()))?;
    check_kinds(layout, database, settings)?;

    // The audit read the store's record, under the lock.
    let recorded: Vec<(RoleKind, String)> = audit
        .grants
        .roles
        .iter()
        .map(|r| (r.kind, r.name.clone()))
        .collect();
    let mut groups = Vec::new();
    let mut renamed = Vec::new();
    for &kind in RoleKind::of(layout) {
        let given = settings.group_names.iter().find(|(k, _)| *k == kind);
        let known = recorded.iter().find(|(k, _)| *k == kind);
        let name = match (given, known) {
            (Some((_, given)), Some((_, known))) if given != known => {
                renamed.push((kind, known.clone(), given.clone()));
                given.clone()
            }
            (Some((_, given)), _) => given.clone(),
            (None, Some((_, known))) => known.clone(),
            (None, None) => kind
                .default_name(database)
                .map_err(|e| Error::InvalidOptions(vec![e]))?,
        };
        groups.push((kind, name));
    }
    if let Some((kind, name)) = groups
        .iter()
        .find(|(k, n)| groups.iter().any(|(k2, n2)| k2 != k && n2 == n))
    {
        return Err(Error::InvalidOptions(vec![format!(
            "role {name:?} would be the store's {kind} role and another of its roles: each role needs a name of its own (--writer-role, --reader-role, --replicator-role)"
        )]));
    }
    let request = Request {
        groups: groups.clone(),
        add: settings.add.clone(),
        remove: settings.remove.clone(),
        replication: settings.replication,
    };
    let mut others: Vec<String> = settings.add.iter().map(|(_, n)| n.clone()).collect();
    others.extend(settings.remove.iter().cloned());
    others.extend(renamed.iter().map(|(_, known, _)| known.clone()));

    let read = async |client: &tokio_postgres::Transaction<'_>| {
        access::read(client, layout, database, Some(&groups), &others)
            .await
            .map_err(|e| Error::query("reading the store's roles and grants", &e))
    };
    let transaction = client
        .transaction()
        .await
        .map_err(|e| Error::query("starting the grant transaction", &e))?;
    let before = read(&transaction).await?;
    check_renames(&before, &renamed)?;
    let plan = access::plan(&before, &request).map_err(problem)?;
    let mut report = GrantReport {
        format_version: output::FORMAT_VERSION,
        database: database.to_string(),
        layout,
        action: GrantAction::Unchanged,
        roles: before.group_rows(),
        statements: plan.statements.clone(),
        notes: plan.notes.clone(),
        warnings: Vec::new(),
    };
    if settings.dry_run {
        report.action = GrantAction::Planned;
        // Roles the run puts into a group lose their own privileges: no warning for them.
        report.warnings = unmanaged_findings(&before)
            .into_iter()
            .filter(|w| {
                !settings
                    .add
                    .iter()
                    .any(|(_, n)| w.contains(&format!("role \"{n}\"")))
            })
            .collect();
        // Nothing was executed; the transaction only read.
        return Ok(report);
    }
    for statement in &plan.statements {
        info!(%statement, "executing");
        transaction
            .batch_execute(statement)
            .await
            .map_err(|e| statement_error(statement, &e))?;
    }
    crate::hooks::pause("granting", None).await;
    let after = read(&transaction).await?;
    let left = access::plan(&after, &request).map_err(problem)?;
    if !left.statements.is_empty() {
        return Err(Error::MissingPrivilege(format!(
            "grant refused, nothing was changed: the statements did not take (a privilege or membership another role granted can only be taken back by that role): still needed: {}",
            left.statements.join("; ")
        )));
    }
    let locked_out = access::sessions_without_connect(&transaction)
        .await
        .map_err(|e| Error::query("looking for sessions that lose CONNECT", &e))?;
    transaction
        .commit()
        .await
        .map_err(|e| Error::query("committing the grants", &e))?;
    if !plan.statements.is_empty() {
        report.action = GrantAction::Granted;
    }
    report.roles = after.group_rows();
    if !locked_out.is_empty() {
        let line = format!(
            "sessions of {} are connected to \"{database}\", but these roles may no longer connect: they keep their sessions, and their next connection is refused; put them into a role with --writer, --reader or --replicator",
            locked_out
                .iter()
                .map(|r| format!("\"{r}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        report.warnings.push(line);
    }
    report.warnings.extend(unmanaged_findings(&after));
    for line in &report.warnings {
        warn!("{line}");
    }
    Ok(report)
}

/// Findings that grant leaves alone (privileges of roles that are in none of the groups): the
/// store opts in, so status reports them as drift until the operator revokes them.
fn unmanaged_findings(state: &AccessState) -> Vec<String> {
    let mut opted_in = state.clone();
    if opted_in.recorded.is_empty() {
        opted_in.recorded = opted_in
            .groups
            .iter()
            .map(|(k, g)| (*k, g.name.clone()))
            .collect();
    }
    access::check(&opted_in)
        .into_iter()
        .filter(|f| f.about == About::Role)
        .map(|f| format!("status will report drift until this is revoked: {f}"))
        .collect()
}

/// Refuses options for roles a layout does not have.
fn check_kinds(layout: Layout, database: &str, settings: &GrantSettings) -> Result<(), Error> {
    let kinds = RoleKind::of(layout);
    let foreign: Vec<String> = settings
        .add
        .iter()
        .map(|(k, _)| *k)
        .chain(settings.group_names.iter().map(|(k, _)| *k))
        .filter(|k| !kinds.contains(k))
        .map(|k| format!("--{k}"))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidOptions(vec![format!(
        "database \"{database}\" is a {layout} store, which has readers only (its subscription writes it): drop {}",
        foreign.join(", ")
    )]))
}

/// Refuses a new name for a group the store records while the recorded role still exists:
/// its rights would stay behind.
fn check_renames(state: &AccessState, renamed: &[(RoleKind, String, String)]) -> Result<(), Error> {
    for (kind, known, given) in renamed {
        if state.other(known).is_some_and(|r| r.exists) {
            return Err(Error::Role(format!(
                "the store's {kind} role is \"{known}\" (recorded by an earlier grant); --{kind}-role \"{given}\" would leave \"{known}\"'s rights in place: drop --{kind}-role, or rename the role first (ALTER ROLE \"{known}\" RENAME TO \"{given}\")"
            )));
        }
    }
    Ok(())
}

fn problem(problem: Problem) -> Error {
    match problem {
        Problem::Privilege(message) => {
            Error::MissingPrivilege(format!("grant refused, nothing was changed: {message}"))
        }
        Problem::Role(message) => Error::Role(message),
    }
}

fn statement_error(statement: &str, error: &tokio_postgres::Error) -> Error {
    let failure = PgFailure::from(error);
    if failure.is(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
        return Error::MissingPrivilege(format!(
            "grant refused, nothing was changed: {statement} was refused: {failure}"
        ));
    }
    Error::Query {
        step: format!("{statement} (rolled back, nothing was changed)"),
        failure,
    }
}
