//! `verify`: prove that a copy (a replica, a backup, a restored source) holds exactly the
//! reference's events. Both stores are read in one read-only snapshot each, compared chunk by
//! chunk with restore's digest computed on both servers at once, and a differing chunk is
//! narrowed down row by row: which ids are missing on either side, and which of ts or event
//! differs. Memory stays bounded (one chunk's row hashes per side at a time); nothing is
//! written.

use tokio_postgres::{Client, IsolationLevel, Transaction};
use tracing::{info, info_span, Instrument};

use crate::connect::{ConnectionSettings, Connector};
use crate::error::{Error, Refusal};
use crate::output::{self, IdRange, OutputFormat, RowReport, VerifyReport};
use crate::pg::PgFailure;
use crate::store::digest::{
    self, chunk_rows, compare_rows, differing_chunks, digest_chunks, RowDifference, Scope,
};

/// At most this many differing rows are listed (all are counted).
const ROWS_LISTED: usize = 20;
/// At most this many missing ranges are listed per side (all missing ids are counted).
const RANGES_LISTED: usize = 100;

/// Validated settings of `verify`.
pub struct VerifySettings {
    /// The reference store.
    pub database: String,
    /// Where the copy is.
    pub replica: ConnectionSettings,
    /// The copy's database.
    pub replica_database: String,
    /// Compare ids up to this one (default: the smaller of the two max ids).
    pub up_to: Option<i64>,
    /// A copy that is behind is a difference.
    pub exact: bool,
    /// Compare timestamps at millisecond precision.
    pub ts_millis: bool,
    pub format: OutputFormat,
}

/// Runs `verify`; differences end it with exit 19 after the report is printed.
pub async fn run(connection: ConnectionSettings, settings: VerifySettings) -> Result<(), Error> {
    let reference_label = format!("{}/{}", connection.endpoint(), settings.database);
    let copy_label = format!(
        "{}/{}",
        settings.replica.endpoint(),
        settings.replica_database
    );
    let mut reference = Connector::new(connection)?;
    let mut copy = Connector::new(settings.replica)?;
    let mut reference_client = reference.connect(&settings.database).await?;
    let mut copy_client = copy.connect(&settings.replica_database).await?;
    let reference_tx = snapshot(&mut reference_client, &reference_label).await?;
    let copy_tx = snapshot(&mut copy_client, &copy_label).await?;
    let (reference_max, copy_max) = tokio::try_join!(
        max_id(&reference_tx, &reference_label),
        max_id(&copy_tx, &copy_label)
    )?;
    let compared_up_to = settings.up_to.unwrap_or(reference_max.min(copy_max));
    let (reference_encoding, copy_encoding) =
        tokio::try_join!(digest::encoding(&reference_tx), digest::encoding(&copy_tx))
            .map_err(|e| Error::query("reading the databases' encodings", &e))?;
    let scope = Scope {
        up_to: Some(compared_up_to),
        ts_millis: settings.ts_millis,
        portable: false,
    }
    .for_encodings(&reference_encoding, &copy_encoding);
    info!(
        reference = %reference_label,
        copy = %copy_label,
        reference_max,
        copy_max,
        compared_up_to,
        "comparing"
    );
    let (reference_digest, copy_digest) = tokio::try_join!(
        digest_chunks(&reference_tx, scope, "the reference"),
        digest_chunks(&copy_tx, scope, "the copy")
    )?;
    let (rows_compared, _) = digest::totals(&reference_digest);

    let mut report = VerifyReport {
        format_version: output::FORMAT_VERSION,
        reference: reference_label,
        copy: copy_label,
        reference_max_id: reference_max,
        copy_max_id: copy_max,
        compared_up_to,
        ts_precision: if settings.ts_millis { "ms" } else { "exact" },
        rows_compared,
        identical_up_to: compared_up_to,
        behind: reference_max - copy_max,
        differing_rows: 0,
        missing_in_copy: Vec::new(),
        missing_in_reference: Vec::new(),
        first_differences: Vec::new(),
        identical: true,
    };
    let chunks = differing_chunks(&reference_digest, &copy_digest);
    async {
        for number in chunks {
            let (reference_rows, copy_rows) = tokio::try_join!(
                chunk_rows(&reference_tx, scope, number, "the reference"),
                chunk_rows(&copy_tx, scope, number, "the copy")
            )?;
            for (id, difference) in compare_rows(&reference_rows, &copy_rows) {
                record(&mut report, id, difference);
            }
        }
        Ok::<(), Error>(())
    }
    .instrument(info_span!("narrow_down"))
    .await?;
    let _ = tokio::join!(reference_tx.commit(), copy_tx.commit());

    // A copy ahead of its reference holds events the source never had: always a difference.
    let copy_ahead = copy_max > reference_max;
    report.identical =
        report.differing_rows == 0 && !copy_ahead && !(settings.exact && report.behind > 0);
    output::emit(&report, settings.format)?;
    if report.identical {
        return Ok(());
    }
    let why = if report.differing_rows > 0 {
        format!(
            "{} differing row(s), the first at id {}",
            report.differing_rows,
            report.identical_up_to + 1
        )
    } else if copy_ahead {
        format!(
            "the copy has ids beyond the reference's last ({} > {})",
            copy_max, reference_max
        )
    } else {
        format!(
            "the copy is {} id(s) behind the reference (--exact)",
            report.behind
        )
    };
    Err(Error::Differences(why))
}

/// Adds one differing id to the report (lists bounded, counts complete).
fn record(report: &mut VerifyReport, id: i64, difference: RowDifference) {
    report.differing_rows += 1;
    report.identical_up_to = report.identical_up_to.min(id - 1);
    match difference {
        RowDifference::MissingInCopy => add_to_ranges(&mut report.missing_in_copy, id),
        RowDifference::MissingInReference => add_to_ranges(&mut report.missing_in_reference, id),
        _ if report.first_differences.len() < ROWS_LISTED => {
            report.first_differences.push(RowReport { id, difference })
        }
        _ => {}
    }
}

/// Ids arrive in increasing order per side: extend the last range or start one.
fn add_to_ranges(ranges: &mut Vec<IdRange>, id: i64) {
    if let Some(last) = ranges.last_mut() {
        if last.last + 1 == id {
            last.last = id;
            return;
        }
    }
    if ranges.len() < RANGES_LISTED {
        ranges.push(IdRange {
            first: id,
            last: id,
        });
    }
}

/// A read-only snapshot: everything compared is one consistent state of the store.
async fn snapshot<'a>(client: &'a mut Client, label: &str) -> Result<Transaction<'a>, Error> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| Error::query(format!("starting a read-only snapshot of {label}"), &e))
}

/// The highest id. A database without an events table of the layout's columns, or with rows
/// that have no id, is refused (exit 12).
async fn max_id(tx: &Transaction<'_>, label: &str) -> Result<i64, Error> {
    let not_slate = |why: String| Error::Refused {
        message: format!("{label} is not a slate event store: {why}"),
        refusal: Refusal::NotSlate,
    };
    let columns = digest::events_columns(tx)
        .await
        .map_err(|e| Error::query(format!("looking for the events table of {label}"), &e))?;
    let expected = digest::EVENTS_COLUMNS;
    if columns.is_empty() {
        return Err(not_slate("it has no events table".into()));
    }
    if columns != expected {
        return Err(not_slate(format!(
            "its events table has columns ({}), not ({})",
            columns.join(", "),
            expected.join(", ")
        )));
    }
    tx.query_one(
        "SELECT COALESCE(max(id), 0), count(*) FILTER (WHERE id IS NULL) FROM public.events",
        &[],
    )
    .await
    .map_err(|e| {
        let failure = PgFailure::from(&e);
        if failure.is(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
            return Error::MissingPrivilege(format!(
                "reading the events of {label} was refused: {failure}; verify needs SELECT on events"
            ));
        }
        Error::Query {
            step: format!("reading the highest id of {label}"),
            failure,
        }
    })
    .and_then(|row| match row.get::<_, i64>(1) {
        0 => Ok(row.get(0)),
        nulls => Err(not_slate(format!("{nulls} of its events have no id"))),
    })
}
