//! `status`: the audit of one database, as tables for people or one JSON document for CI.

use comfy_table::{presets, Cell, ContentArrangement, Table};

use crate::audit::{self, Audit, MigrationState, ObjectState, Verdict};
use crate::cli::OutputFormat;
use crate::connect::{ConnectionSettings, Connector};
use crate::error::Error;

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
    match settings.format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&audit).expect("serializable")
        ),
        OutputFormat::Text => print!("{}", render_text(&audit)),
    }
    match audit.verdict {
        Verdict::UpToDate => Ok(()),
        _ => Err(Error::State {
            message: audit
                .notes
                .first()
                .cloned()
                .unwrap_or_else(|| format!("{:?}", audit.verdict)),
            exit_code: audit.verdict.exit_code(),
        }),
    }
}

/// The text report: a header, the migrations table and the objects table.
pub fn render_text(audit: &Audit) -> String {
    let mut out = String::new();
    out.push_str(&format!("database  {}\n", audit.database));
    out.push_str(&format!(
        "layout    {}\n",
        audit
            .layout
            .map(|l| l.name())
            .unwrap_or("none (not a slate event store)")
    ));
    out.push_str(&format!("verdict   {}\n", verdict_name(audit.verdict)));
    for note in &audit.notes {
        out.push_str(&format!("          {note}\n"));
    }
    if audit.layout.is_none() {
        return out;
    }

    let mut migrations = table(["version", "name", "state", "applied on", "checksum"]);
    for m in &audit.migrations {
        let checksum = match (m.state, &m.checksum, &m.expected_checksum) {
            (MigrationState::Divergent, Some(found), Some(expected)) => {
                format!("{found} (expected {expected})")
            }
            (_, Some(found), _) => found.clone(),
            (_, None, Some(expected)) => expected.clone(),
            _ => String::new(),
        };
        migrations.add_row([
            format!("V{}", m.version),
            m.name.clone(),
            format!("{:?}", m.state).to_lowercase(),
            m.applied_on.as_deref().map(to_seconds).unwrap_or_default(),
            checksum,
        ]);
    }
    out.push_str(&format!("\nmigrations\n{migrations}\n"));

    let mut objects = table(["kind", "name", "state", "detail"]);
    for o in &audit.objects {
        let detail = match o.state {
            ObjectState::Ok => String::new(),
            ObjectState::Changed => format!(
                "expected: {}\nfound:    {}",
                o.expected.as_deref().unwrap_or(""),
                o.actual.as_deref().unwrap_or("")
            ),
            ObjectState::Missing | ObjectState::Pending => o.expected.clone().unwrap_or_default(),
            ObjectState::Extra => o.actual.clone().unwrap_or_default(),
        };
        objects.add_row([
            Cell::new(&o.kind),
            Cell::new(&o.name),
            Cell::new(format!("{:?}", o.state).to_lowercase()),
            Cell::new(detail),
        ]);
    }
    out.push_str(&format!("\nobjects\n{objects}\n"));
    out
}

/// `2026-11-25T20:03:09.956942Z` as `2026-11-25 20:03:09Z`: the table needs no nanoseconds
/// (JSON keeps them).
fn to_seconds(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(date), Some(time)) if rfc3339.ends_with('Z') => format!("{date} {time}Z"),
        _ => rfc3339.to_string(),
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::UpToDate => "up-to-date",
        Verdict::Pending => "pending",
        Verdict::Drift => "drift",
        Verdict::Unmanaged => "unmanaged",
        Verdict::NotSlate => "not-slate",
    }
}

fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::ASCII_MARKDOWN)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
}
