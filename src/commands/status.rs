//! `status`: the audit of one database, as tables for people or one JSON document for CI.

use crate::connect::{ConnectionSettings, Connector};
use tokio_postgres::error::SqlState;

use crate::error::Error;
use crate::lock;
use crate::output::{self, OutputFormat};
use crate::retry::{self, Backoff};
use crate::store::audit::{self, Verdict};
use crate::store::follow;
use crate::store::staging;

/// Validated settings of `status`.
pub struct StatusSettings {
    /// The database to audit.
    pub database: String,
    /// Text or JSON on stdout.
    pub format: OutputFormat,
    /// How long to wait for a run that is changing the store.
    pub lock_timeout: std::time::Duration,
}

/// Audits, retrying a few times when DDL of another session (a run of an older release, or a
/// DBA) changed the catalog under the audit's feet: PostgreSQL then reports "cache lookup
/// failed" (XX000) or a vanished relation (42P01).
async fn audit_through_concurrent_ddl(
    client: &tokio_postgres::Client,
    database: &str,
) -> Result<audit::Audit, Error> {
    let mut backoff = Backoff::new(retry::AUDIT_DURING_DDL, None);
    loop {
        match audit::audit(client, database, None).await {
            Err(Error::Query { failure, .. })
                if (failure.is(&SqlState::INTERNAL_ERROR)
                    || failure.is(&SqlState::UNDEFINED_TABLE))
                    && backoff.pause().await =>
            {
                tracing::warn!(%failure, "the catalog changed during the audit; auditing again");
            }
            other => return other,
        }
    }
}

/// Runs `status`: prints the audit, and ends with the verdict's exit code.
pub async fn run(connection: ConnectionSettings, settings: StatusSettings) -> Result<(), Error> {
    let mut connector = Connector::new(connection)?;
    let client = connector.connect(&settings.database).await?;
    // A run changing the store holds its lock: wait for it briefly, then say who is busy.
    lock::acquire_shared(&client, lock::TARGET_LOCK, settings.lock_timeout).await?;
    let audit = audit_through_concurrent_ddl(&client, &settings.database).await?;
    let leftovers = staging::leftovers(&client).await?;
    let replication = follow::replication(&client).await;
    output::emit(
        &output::StatusReport {
            format_version: output::FORMAT_VERSION,
            audit: &audit,
            leftovers,
            replication,
        },
        settings.format,
    )?;
    match audit.verdict {
        Verdict::UpToDate => Ok(()),
        _ => Err(audit.verdict_error()),
    }
}
