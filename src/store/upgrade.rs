//! Bringing an existing store up to this build's layout: applying pending migrations after
//! the audit has verified the rest, and `create --if-not-exists` on an existing database.

use std::time::Duration;

use tokio_postgres::Client;
use tracing::{info, info_span, Instrument};

use crate::connect::Connector;
use crate::error::Error;
use crate::lock;
use crate::pg;
use crate::store::audit::{self, Audit, Verdict};
use crate::store::layout::{self, AppliedMigration, Layout};

/// What `create --if-not-exists` found (and did) with an existing database.
pub enum Existing {
    /// A verified, up-to-date store of the layout: nothing to do.
    UpToDate,
    /// Verified, with pending migrations (a dry run applies nothing).
    Pending,
    /// Verified, and its pending migrations were applied.
    Migrated(Vec<AppliedMigration>),
}

/// `create --if-not-exists` on an existing database: nothing to do when it is a verified,
/// up-to-date store of `layout`; apply pending migrations when that is all it lacks; refuse
/// otherwise. Returns the action taken and what was applied.
pub async fn bring_existing_up_to_date(
    connector: &mut Connector,
    database: &str,
    layout: Layout,
    dry_run: bool,
    lock_timeout: Duration,
) -> Result<Existing, Error> {
    let mut client = connector.connect(database).await?;
    if !dry_run {
        lock::acquire(&client, lock::TARGET_LOCK, lock_timeout).await?;
    }
    let audit = audit::audit(&client, database, Some(layout)).await?;
    check_layout(&audit, Some(layout))?;
    match audit.verdict {
        Verdict::UpToDate => {
            info!("database \"{database}\" exists and is a verified, up-to-date {layout} store: nothing to do");
            Ok(Existing::UpToDate)
        }
        Verdict::Pending if dry_run => Ok(Existing::Pending),
        Verdict::Pending => Ok(Existing::Migrated(
            apply_pending(&mut client, &audit).await?.0,
        )),
        _ => Err(audit.refusal("--if-not-exists refused")),
    }
}

/// Applies the pending migrations of a verified database in one transaction, then audits it
/// again: the result must be up to date. Returns what was applied and that audit.
pub async fn apply_pending(
    client: &mut Client,
    audit: &Audit,
) -> Result<(Vec<AppliedMigration>, Audit), Error> {
    let layout = audit.layout.expect("a verified database has a layout");
    let applied = layout::apply(client, layout, None)
        .instrument(info_span!("migrate", database = %audit.database, layout = %layout))
        .await
        .map_err(|e| Error::MigrationFailed {
            database: audit.database.clone(),
            versions: audit
                .pending_versions()
                .iter()
                .map(|v| format!("V{v}"))
                .collect::<Vec<_>>()
                .join(", "),
            failure: pg::failure_in_chain(&*e),
        })?;
    for m in &applied {
        info!(version = m.version, checksum = %m.checksum, "applied migration V{}__{}", m.version, m.name);
    }
    let after = audit::audit(client, &audit.database, Some(layout)).await?;
    if after.verdict != Verdict::UpToDate {
        return Err(after.refusal("after migrating"));
    }
    Ok((applied, after))
}

/// Refuses a database of the other layout than `-t` asks for.
pub fn check_layout(audit: &Audit, wanted: Option<Layout>) -> Result<(), Error> {
    match (audit.layout, wanted) {
        (Some(found), Some(wanted)) if found != wanted => Err(Error::WrongLayout {
            database: audit.database.clone(),
            found: found.name(),
            wanted: wanted.name(),
        }),
        _ => Ok(()),
    }
}
