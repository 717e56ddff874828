//! `status`: the audit of one database, as tables for people or one JSON document for CI.

use crate::connect::{ConnectionSettings, Connector};
use crate::error::Error;
use crate::output::{self, OutputFormat};
use crate::store::audit::{self, Verdict};
use crate::store::build;

/// Validated settings of `status`.
pub struct StatusSettings {
    /// The database to audit.
    pub database: String,
    /// Text or JSON on stdout.
    pub format: OutputFormat,
}

/// Runs `status`: prints the audit, and ends with the verdict's exit code.
pub async fn run(connection: ConnectionSettings, settings: StatusSettings) -> Result<(), Error> {
    let mut connector = Connector::new(connection)?;
    let client = connector.connect(&settings.database).await?;
    let audit = audit::audit(&client, &settings.database, None).await?;
    let leftovers = build::leftovers(&client).await?;
    output::emit(
        &output::StatusReport {
            format_version: output::FORMAT_VERSION,
            audit: &audit,
            leftovers,
        },
        settings.format,
    );
    match audit.verdict {
        Verdict::UpToDate => Ok(()),
        _ => Err(audit.verdict_error()),
    }
}
