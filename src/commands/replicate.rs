//! `replicate`: make a destination follow a source with PostgreSQL's logical replication, or stop
//! it (`--stop`). A short script over [`crate::store::follow`] and, for a destination that does
//! not exist yet, the staging pipeline: the new store is filled up to the start point before it
//! is published under its name.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tracing::{info, warn};

use crate::connect::{ConnectionSettings, Connector};
use crate::error::Error;
use crate::guarded::guarded;
use crate::hooks;
use crate::identifier::Identifier;
use crate::lock::Waits;
use crate::output::{self, OutputFormat, ReplicateAction, ReplicateReport};
use crate::shutdown::Shutdown;
use crate::store::audit::{self, Verdict};
use crate::store::digest::{self, Scope};
use crate::store::follow::{self, StartPoint};
use crate::store::layout::Layout;
use crate::store::lifecycle;
use crate::store::staging::{self, Ledger, Staging};

/// Validated settings of `replicate`: the destination's server, and the rest.
pub struct ReplicateSettings {
    /// The destination's server.
    pub destination: ConnectionSettings,
    pub plan: ReplicatePlan,
}

/// What to replicate, and how.
pub struct ReplicatePlan {
    /// The source store.
    pub database: String,
    pub destination_database: Identifier,
    /// The source as the destination's server reaches it.
    pub publisher_host: String,
    pub publisher_port: u16,
    /// Compare an existing destination's timestamps at millisecond precision.
    pub ts_millis: bool,
    pub catch_up_timeout: Duration,
    pub stop: bool,
    pub dry_run: bool,
    /// On the destination's server, for CREATE DATABASE.
    pub maintenance_db: String,
    pub waits: Waits,
    pub format: OutputFormat,
}

/// The two servers.
struct Servers {
    source: Connector,
    destination: Connector,
}

/// What this run has made that a failure must undo.
#[derive(Default)]
struct Made {
    /// The slot, created on the source, with no subscription yet.
    slot: Option<String>,
}

/// Runs `replicate`. Whatever ends it early, a slot it created without its subscription is
/// dropped, and a destination database it was building is removed.
pub async fn run(
    connection: ConnectionSettings,
    settings: ReplicateSettings,
    shutdown: &Shutdown,
) -> Result<(), Error> {
    let _guard = shutdown.guard();
    let ReplicateSettings {
        destination,
        plan: settings,
    } = settings;
    info!(
        source = %format!("{}/{}", connection.endpoint(), settings.database),
        destination = %format!("{}/{}", destination.endpoint(), settings.destination_database),
        stop = settings.stop,
        dry_run = settings.dry_run,
        "init-slate-db {} replicate starting",
        env!("CARGO_PKG_VERSION")
    );
    let mut servers = Servers {
        source: Connector::new(connection)?,
        destination: Connector::new(destination)?,
    };
    let cancellers = [servers.source.canceller(), servers.destination.canceller()];
    let ledger = Ledger::new(&settings.maintenance_db);
    let made = Mutex::new(Made::default());
    let report = guarded(
        shutdown,
        &cancellers,
        || ledger.current_step(),
        &mut servers,
        async |servers| replicate(servers, &settings, &ledger, &made).await,
        async |servers, error| {
            let mut undone = Vec::new();
            let slot = made.lock().ok().and_then(|mut m| m.slot.take());
            if let Some(slot) = slot {
                match servers.source.connect(&settings.database).await {
                    Ok(source) => match follow::drop_slot(&source, &slot).await {
                        Ok(_) => undone.push(format!("the slot {slot} was dropped")),
                        Err(e) => undone.push(format!("dropping the slot {slot} failed ({e}): run init-slate-db replicate --stop")),
                    },
                    Err(e) => undone.push(format!("the slot {slot} could not be dropped ({e}): run init-slate-db replicate --stop")),
                }
            }
            if let Some(cleanup) = staging::discard(&mut servers.destination, &ledger, false).await
            {
                undone.push(cleanup);
            }
            let cleanup = (!undone.is_empty()).then(|| undone.join("; "));
            error.cleaned_up(cleanup)
        },
    )
    .await?;
    output::emit(&report, settings.format)
}

async fn replicate(
    servers: &mut Servers,
    settings: &ReplicatePlan,
    ledger: &Ledger,
    made: &Mutex<Made>,
) -> Result<ReplicateReport, Error> {
    let started = Instant::now();
    let destination_label = format!(
        "{}/{}",
        servers.destination.settings().endpoint(),
        settings.destination_database
    );
    let name = follow::follower_name(
        &servers.destination.settings().endpoint(),
        settings.destination_database.as_str(),
    );
    let mut report = ReplicateReport {
        format_version: output::FORMAT_VERSION,
        source: format!(
            "{}/{}",
            servers.source.settings().endpoint(),
            settings.database
        ),
        destination: destination_label,
        subscription: name.clone(),
        action: ReplicateAction::DryRun,
        destination_created: false,
        copied_events: 0,
        start_id: 0,
        source_last_id: 0,
        destination_last_id: 0,
        caught_up: false,
        duration_ms: 0,
    };

    ledger.step("connecting to the source");
    let mut source = servers.source.connect(&settings.database).await?;
    if settings.stop {
        return stop(servers, settings, &source, &name, report, started).await;
    }
    ledger.step("checking the source");
    let audit = audit::audit(&source, &settings.database, Some(Layout::Source)).await?;
    lifecycle::check_layout(&audit, Some(Layout::Source))?;
    if audit.layout_verdict != Verdict::UpToDate {
        return Err(audit.refusal("replicate refused"));
    }
    let problems = follow::source_readiness(&source).await?;
    if !problems.is_empty() {
        return Err(Error::NotReplicable {
            endpoint: servers.source.settings().endpoint(),
            problems: problems.join("; "),
        });
    }

    ledger.step("checking the destination");
    let maintenance = servers
        .destination
        .connect(&settings.maintenance_db)
        .await?;
    if let Some(why) =
        follow::may_subscribe(&maintenance, settings.destination_database.as_str()).await?
    {
        return Err(Error::MissingPrivilege(format!(
            "role \"{}\" may not create the subscription on the destination's server: {why}; nothing was created",
            servers.destination.user()
        )));
    }
    let exists: bool = maintenance
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1)",
            &[&settings.destination_database.as_str()],
        )
        .await
        .map_err(|e| Error::query("looking for the destination database", &e))?
        .get(0);
    drop(maintenance);
    let conninfo = conninfo(servers, settings);
    let password = servers
        .source
        .settings()
        .password
        .as_ref()
        .map(|p| p.expose_secret().to_string())
        .unwrap_or_default();

    if !exists {
        // A new destination: built under a temporary name, filled up to the start point, and
        // published; then it subscribes.
        let checked = staging::check(
            &mut servers.destination,
            ledger,
            &settings.destination_database,
            Layout::Destination,
        )
        .await?;
        if settings.dry_run {
            report.duration_ms = elapsed_ms(started);
            return Ok(report);
        }
        follow::ensure_publication(&source).await?;
        let source_ref = &mut source;
        let fill = async |connector: &mut Connector, staged: &staging::Staged| {
            ledger.touch("holding writers while the slot is created");
            let start =
                start_point(source_ref, &name, settings.waits.ddl_lock_timeout, made).await?;
            ledger.step("copying the events up to the start point");
            let mut target = connector.connect(&staged.temp).await?;
            let copied = follow::copy_range(source_ref, &mut target, 0, start.last_id).await?;
            Ok::<_, Error>((start, copied))
        };
        let (start, copied) = match checked
            .build(
                &mut servers.destination,
                settings.waits.lock_timeout,
                ledger,
                fill,
            )
            .await?
        {
            Staging::Published { filled, .. } => filled,
            Staging::NameTaken => {
                return Err(Error::DatabaseExists {
                    database: settings.destination_database.to_string(),
                    endpoint: servers.destination.settings().endpoint(),
                })
            }
        };
        report.destination_created = true;
        report.start_id = start.last_id;
        report.copied_events = copied;
    } else {
        let mut destination = servers
            .destination
            .connect(settings.destination_database.as_str())
            .await?;
        let audit = audit::audit(
            &destination,
            settings.destination_database.as_str(),
            Some(Layout::Destination),
        )
        .await?;
        lifecycle::check_layout(&audit, Some(Layout::Destination))?;
        if audit.layout_verdict != Verdict::UpToDate {
            return Err(audit.refusal("replicate refused"));
        }
        if follow::subscribed(&destination, &name).await? {
            report.action = ReplicateAction::AlreadyFollowing;
            return catch_up(&source, &destination, settings, report, started).await;
        }
        ledger.step("checking that the destination is a prefix of the source");
        let have = check_prefix(&mut source, &mut destination, settings).await?;
        if settings.dry_run {
            report.destination_last_id = have;
            report.duration_ms = elapsed_ms(started);
            return Ok(report);
        }
        follow::ensure_publication(&source).await?;
        ledger.step("holding writers while the slot is created");
        let start = start_point(&mut source, &name, settings.waits.ddl_lock_timeout, made).await?;
        ledger.step("copying the events the destination lacks");
        report.copied_events =
            follow::copy_range(&source, &mut destination, have, start.last_id).await?;
        report.start_id = start.last_id;
    }

    ledger.step("creating the subscription");
    hooks::pause("subscribing", None).await;
    let destination = servers
        .destination
        .connect(settings.destination_database.as_str())
        .await?;
    follow::subscribe(&destination, &name, &conninfo, &password).await?;
    if let Ok(mut made) = made.lock() {
        made.slot = None; // the subscription owns it now
    }
    info!(subscription = %name, start_id = report.start_id, "subscribed: the destination follows the source");
    report.action = ReplicateAction::Following;
    catch_up(&source, &destination, settings, report, started).await
}

/// Creates the slot with writers held, and records it for the clean-up until a subscription
/// owns it.
async fn start_point(
    source: &mut tokio_postgres::Client,
    name: &str,
    lock_wait: Duration,
    made: &Mutex<Made>,
) -> Result<StartPoint, Error> {
    // A slot of this name with no subscription behind it is what a killed run left (the
    // destination has no subscription, or it would not be here): remove it first.
    let inactive: bool = source
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND NOT active)",
            &[&name],
        )
        .await
        .map_err(|e| Error::query("looking for a slot left behind", &e))?
        .get(0);
    if inactive && follow::drop_slot(source, name).await? {
        warn!(slot = %name, "removed the slot {name} left by an earlier run that did not finish");
    }
    // Recorded first: a signal while the slot is being created still drops it.
    if let Ok(mut made) = made.lock() {
        made.slot = Some(name.to_string());
    }
    let start = follow::fix_start_point(source, name, lock_wait).await?;
    info!(slot = %name, last_id = start.last_id, "slot created at the last committed id");
    Ok(start)
}

/// An existing destination must hold exactly the source's first events, ids 1 to its highest,
/// none missing: returns that highest id.
async fn check_prefix(
    source: &mut tokio_postgres::Client,
    destination: &mut tokio_postgres::Client,
    settings: &ReplicatePlan,
) -> Result<i64, Error> {
    let have = follow::last_id(destination).await?;
    if have == 0 {
        return Ok(0);
    }
    let source_last = follow::last_id(source).await?;
    if have > source_last {
        return Err(Error::NotPrefix {
            destination: settings.destination_database.to_string(),
            why: format!("it holds ids up to {have}, beyond the source's last, {source_last}"),
        });
    }
    let source_tx = source
        .transaction()
        .await
        .map_err(|e| Error::query("reading the source", &e))?;
    let destination_tx = destination
        .transaction()
        .await
        .map_err(|e| Error::query("reading the destination", &e))?;
    let (source_encoding, destination_encoding) = tokio::try_join!(
        digest::encoding(&source_tx),
        digest::encoding(&destination_tx)
    )
    .map_err(|e| Error::query("reading the databases' encodings", &e))?;
    let scope = Scope {
        up_to: Some(have),
        ts_millis: settings.ts_millis,
        portable: false,
    }
    .for_encodings(&source_encoding, &destination_encoding);
    let (theirs, ours) = tokio::try_join!(
        digest::digest_chunks(&source_tx, scope, "the source"),
        digest::digest_chunks(&destination_tx, scope, "the destination")
    )?;
    let (rows, _) = digest::totals(&ours);
    let not_prefix = |why: String| Error::NotPrefix {
        destination: settings.destination_database.to_string(),
        why,
    };
    if rows != have {
        return Err(not_prefix(format!(
            "it holds {rows} events up to id {have}: ids are missing"
        )));
    }
    if let Some(first) =
        digest::first_difference(&source_tx, &destination_tx, scope, &theirs, &ours).await?
    {
        return Err(not_prefix(format!(
            "its event {first} differs from the source's (a destination filled by the elm-slate replicator, which keeps milliseconds, needs --ts-precision ms)"
        )));
    }
    let _ = tokio::join!(source_tx.commit(), destination_tx.commit());
    Ok(have)
}

/// Waits up to `--catch-up-timeout` for the destination to hold the source's last id as of now,
/// and reports where both are.
async fn catch_up(
    source: &tokio_postgres::Client,
    destination: &tokio_postgres::Client,
    settings: &ReplicatePlan,
    mut report: ReplicateReport,
    started: Instant,
) -> Result<ReplicateReport, Error> {
    let target = follow::last_id(source).await?;
    let deadline = Instant::now() + settings.catch_up_timeout;
    loop {
        let applied = follow::last_id(destination).await?;
        report.source_last_id = target;
        report.destination_last_id = applied;
        if applied >= target {
            report.caught_up = true;
            break;
        }
        if Instant::now() >= deadline {
            warn!(
                applied,
                target, "the destination has not caught up yet; it goes on in the background"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report.duration_ms = elapsed_ms(started);
    Ok(report)
}

/// `--stop`: the destination's subscription, then the slot on the source.
async fn stop(
    servers: &mut Servers,
    settings: &ReplicatePlan,
    source: &tokio_postgres::Client,
    name: &str,
    mut report: ReplicateReport,
    started: Instant,
) -> Result<ReplicateReport, Error> {
    report.action = ReplicateAction::Stopped;
    if settings.dry_run {
        report.action = ReplicateAction::DryRun;
        report.duration_ms = elapsed_ms(started);
        return Ok(report);
    }
    // A destination that is gone (or unreachable) leaves only the slot to remove.
    match servers
        .destination
        .connect(settings.destination_database.as_str())
        .await
    {
        Ok(destination) => {
            if follow::unsubscribe(&destination, name).await? {
                info!(subscription = %name, "removed the subscription");
            }
        }
        Err(error) => {
            warn!(%error, "the destination cannot be reached: removing the slot on the source only")
        }
    }
    if follow::drop_slot(source, name).await? {
        info!(slot = %name, "dropped the slot on the source");
    }
    report.duration_ms = elapsed_ms(started);
    Ok(report)
}

/// The connection string the destination's server uses to reach the source: libpq syntax,
/// each value quoted.
fn conninfo(servers: &Servers, settings: &ReplicatePlan) -> String {
    let quote = |value: &str| format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"));
    let source = servers.source.settings();
    let mut parts = vec![
        format!("host={}", quote(&settings.publisher_host)),
        format!("port={}", settings.publisher_port),
        format!("dbname={}", quote(&settings.database)),
        format!("user={}", quote(servers.source.user())),
        format!(
            "application_name={}",
            quote(&follow::follower_label(
                settings.destination_database.as_str(),
                &servers.destination.settings().endpoint()
            ))
        ),
        format!("sslmode={}", source.ssl_mode),
    ];
    if let Some(password) = &source.password {
        parts.push(format!("password={}", quote(password.expose_secret())));
    }
    parts.join(" ")
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
