//! A destination following a source through PostgreSQL's own logical replication: the source's
//! insert-only publication of `events`, one slot per destination, and the destination's
//! subscription. No replicator of the tool's own: PostgreSQL applies the inserts, in commit
//! order, which for a slate source is id order (`insert_events` holds the id row until commit).
//!
//! Every destination starts the same way, empty, filled by another replicator, or the
//! survivor of a restore: writers are held on the `id` table for a moment while the slot is
//! created (so the slot starts exactly after the last committed id), the ids the destination
//! lacks up to that point are copied, and the subscription starts from the slot without a copy
//! of its own (`copy_data = false`).

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, IsolationLevel};

use crate::error::Error;
use crate::hooks;
use crate::pg::{quote_identifier, quote_literal};

/// The publication every destination of a source subscribes to.
pub const PUBLICATION: &str = "slate_events";

/// The name of a destination's slot on the source and of its subscription: `slate_follow_` and
/// 16 hex digits of the destination's server and database, the same on every run.
pub fn follower_name(destination_endpoint: &str, destination_database: &str) -> String {
    let digest = Sha256::digest(format!("{destination_endpoint}/{destination_database}"));
    format!("slate_follow_{}", hex::encode(&digest[..8]))
}

/// Why a source's server cannot feed a subscription, each with what to change; empty when it
/// can.
pub async fn source_readiness(source: &Client) -> Result<Vec<String>, Error> {
    let row = source
        .query_one(
            "SELECT current_setting('wal_level'),
                    current_setting('max_replication_slots')::int
                      - (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int,
                    current_setting('max_wal_senders')::int
                      - (SELECT count(*) FROM pg_catalog.pg_stat_replication)::int",
            &[],
        )
        .await
        .map_err(|e| Error::query("reading the source's replication settings", &e))?;
    let (wal_level, free_slots, free_senders): (String, i32, i32) =
        (row.get(0), row.get(1), row.get(2));
    let mut problems = Vec::new();
    if wal_level != "logical" {
        problems.push(format!(
            "wal_level is {wal_level}, not logical: set wal_level = logical (ALTER SYSTEM SET wal_level = logical; on RDS rds.logical_replication = 1, on Cloud SQL cloudsql.logical_decoding = on) and restart the server"
        ));
    }
    if free_slots < 1 {
        problems.push("no replication slot is free: raise max_replication_slots (restart needed) or remove a slot nobody uses (init-slate-db replicate --stop)".into());
    }
    if free_senders < 1 {
        problems.push("no WAL sender is free: raise max_wal_senders (restart needed)".into());
    }
    Ok(problems)
}

/// Whether the role may create a subscription in `database` on the destination's server (`None`:
/// it may): a superuser, or from PostgreSQL 16 a member of `pg_create_subscription` with CREATE
/// on the database (which a database the role is about to create gives it).
pub async fn may_subscribe(maintenance: &Client, database: &str) -> Result<Option<String>, Error> {
    let row = maintenance
        .query_one(
            "SELECT r.rolsuper, current_setting('server_version_num')::int,
                    NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1)
                      OR pg_catalog.has_database_privilege($1, 'CREATE'),
                    EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pg_create_subscription')
                      AND pg_catalog.pg_has_role(current_user, 'pg_create_subscription', 'USAGE')
               FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
            &[&database],
        )
        .await
        .map_err(|e| Error::query("checking the right to create a subscription", &e))?;
    let (superuser, version, create, member): (bool, i32, bool, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    if superuser || (version >= 160000 && member && create) {
        return Ok(None);
    }
    Ok(Some(if version >= 160000 {
        "it must be a superuser, or a member of pg_create_subscription with CREATE on the destination database (GRANT pg_create_subscription TO ...; GRANT CREATE ON DATABASE ... TO ...)".into()
    } else {
        "before PostgreSQL 16 only a superuser may create a subscription".into()
    }))
}

/// Creates the insert-only publication of `events` if it does not exist yet (it needs the
/// table's owner). Returns whether this call created it.
pub async fn ensure_publication(source: &Client) -> Result<bool, Error> {
    let exists: bool = source
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)",
            &[&PUBLICATION],
        )
        .await
        .map_err(|e| Error::query("looking for the publication", &e))?
        .get(0);
    if exists {
        return Ok(false);
    }
    source
        .batch_execute(&format!(
            "CREATE PUBLICATION {} FOR TABLE public.events WITH (publish = 'insert')",
            quote_identifier(PUBLICATION)
        ))
        .await
        .map_err(|e| {
            let failure = crate::pg::PgFailure::from(&e);
            if failure.is(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
                return Error::MissingPrivilege(format!(
                    "the role may not create the publication of events: {failure}; it must own the events table and have CREATE on the database (run as the store's owner)"
                ));
            }
            Error::Query {
                step: "creating the publication of events".into(),
                failure,
            }
        })?;
    Ok(true)
}

/// The point a destination starts from: the slot, created while writers were held, and the last
/// id committed before it.
#[derive(Debug, Clone)]
pub struct StartPoint {
    pub slot: String,
    pub last_id: i64,
}

/// Holds writers on the `id` table (SHARE mode: `insert_events` updates its row) for as long as
/// creating the slot takes, at most `lock_wait` for the lock itself, and reads the last id:
/// every event up to it is committed, every later one comes through the slot.
pub async fn fix_start_point(
    source: &mut Client,
    slot: &str,
    lock_wait: std::time::Duration,
) -> Result<StartPoint, Error> {
    let tx = source
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .await
        .map_err(|e| Error::query("starting the transaction that fixes the start point", &e))?;
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = {}; LOCK TABLE public.id IN SHARE MODE",
        lock_wait.as_millis().max(1)
    ))
    .await
    .map_err(|e| Error::query("holding writers on the id table", &e))?;
    let last_id: i64 = tx
        .query_one(
            "SELECT COALESCE(max(id), 0)::bigint FROM public.events",
            &[],
        )
        .await
        .map_err(|e| Error::query("reading the last id", &e))?
        .get(0);
    tx.query_one(
        "SELECT lsn::text FROM pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')",
        &[&slot],
    )
    .await
    .map_err(|e| {
        let failure = crate::pg::PgFailure::from(&e);
        if failure.is(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
            return Error::MissingPrivilege(format!(
                "the role may not create a replication slot: {failure}; it needs the REPLICATION attribute (ALTER ROLE ... REPLICATION; on RDS the rds_replication role); nothing was created"
            ));
        }
        Error::Query {
            step: format!("creating the replication slot {slot}"),
            failure,
        }
    })?;
    hooks::pause("slot-created", None).await;
    tx.commit()
        .await
        .map_err(|e| Error::query("releasing the writers", &e))?;
    Ok(StartPoint {
        slot: slot.to_string(),
        last_id,
    })
}

/// Copies the source's events with ids in `(after, up_to]` into the destination in one
/// transaction, by binary COPY. Returns the rows copied.
pub async fn copy_range(
    source: &Client,
    destination: &mut Client,
    after: i64,
    up_to: i64,
) -> Result<u64, Error> {
    if up_to <= after {
        return Ok(0);
    }
    let tx = destination
        .transaction()
        .await
        .map_err(|e| Error::query("starting the copy into the destination", &e))?;
    let rows = source
        .copy_out(&format!(
            "COPY (SELECT id, ts, event FROM public.events WHERE id > {after} AND id <= {up_to} ORDER BY id) TO STDOUT (FORMAT binary)"
        ))
        .await
        .map_err(|e| Error::query("starting COPY out of the source", &e))?;
    let sink = tx
        .copy_in("COPY public.events (id, ts, event) FROM STDIN (FORMAT binary)")
        .await
        .map_err(|e| Error::query("starting COPY into the destination", &e))?;
    futures_util::pin_mut!(rows);
    futures_util::pin_mut!(sink);
    let mut block = BytesMut::with_capacity(256 * 1024);
    while let Some(chunk) = rows.next().await {
        let chunk = chunk.map_err(|e| Error::query("reading from the source", &e))?;
        block.extend_from_slice(&chunk);
        if block.len() >= 256 * 1024 {
            sink.send(block.split().freeze())
                .await
                .map_err(|e| Error::query("writing into the destination", &e))?;
        }
    }
    if !block.is_empty() {
        sink.send(block.split().freeze())
            .await
            .map_err(|e| Error::query("writing into the destination", &e))?;
    }
    let copied = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| Error::query("finishing COPY into the destination", &e))?;
    tx.commit()
        .await
        .map_err(|e| Error::query("committing the copy", &e))?;
    Ok(copied)
}

/// Creates the destination's subscription to the slot, streaming from where the slot starts.
/// `conninfo` holds the source's password: it is stored in `pg_subscription.subconninfo`, which
/// only superusers (and from 16 the subscription's owner) may read, and never printed.
pub async fn subscribe(
    destination: &Client,
    name: &str,
    conninfo: &str,
    password: &str,
) -> Result<(), Error> {
    let version: i32 = destination
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| Error::query("reading the destination's version", &e))?
        .get(0);
    // disable_on_error (15+): a conflicting row stops the subscription, which status shows,
    // instead of a retry loop in the server log.
    let on_error = if version >= 150000 {
        ", disable_on_error = true"
    } else {
        ""
    };
    destination
        .batch_execute(&format!(
            "CREATE SUBSCRIPTION {name} CONNECTION {conninfo} PUBLICATION {publication} WITH (create_slot = false, slot_name = {slot}, copy_data = false, enabled = true{on_error})",
            name = quote_identifier(name),
            conninfo = quote_literal(conninfo),
            publication = quote_identifier(PUBLICATION),
            slot = quote_literal(name),
        ))
        .await
        // The message could quote the connection string: never the password.
        .map_err(|e| Error::Query {
            step: "creating the subscription".into(),
            failure: crate::pg::PgFailure::from(&e).redacted(password),
        })
}

/// Whether the database `client` is connected to has the subscription `name` (pg_subscription
/// is shared by the whole cluster: another database's subscription is not this one's).
pub async fn subscribed(client: &Client, name: &str) -> Result<bool, Error> {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_subscription s
                              JOIN pg_catalog.pg_database d ON d.oid = s.subdbid
                             WHERE s.subname = $1 AND d.datname = current_database())",
            &[&name],
        )
        .await
        .map(|row| row.get(0))
        .map_err(|e| Error::query("looking for the subscription", &e))
}

/// Removes the destination's subscription (without touching the slot, which the caller drops on
/// the source). Returns whether there was one.
pub async fn unsubscribe(destination: &Client, name: &str) -> Result<bool, Error> {
    if !subscribed(destination, name).await? {
        return Ok(false);
    }
    let name = quote_identifier(name);
    for statement in [
        format!("ALTER SUBSCRIPTION {name} DISABLE"),
        format!("ALTER SUBSCRIPTION {name} SET (slot_name = NONE)"),
        format!("DROP SUBSCRIPTION {name}"),
    ] {
        destination
            .batch_execute(&statement)
            .await
            .map_err(|e| Error::query("removing the subscription", &e))?;
    }
    Ok(true)
}

/// Drops the slot on the source, waiting up to 10 s for its WAL sender to let go. Returns
/// whether there was one.
pub async fn drop_slot(source: &Client, slot: &str) -> Result<bool, Error> {
    for _ in 0..50 {
        let row = source
            .query_opt(
                "SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(|e| Error::query("looking for the replication slot", &e))?;
        match row.map(|r| r.get::<_, bool>(0)) {
            None => return Ok(false),
            Some(false) => {
                source
                    .execute("SELECT pg_catalog.pg_drop_replication_slot($1)", &[&slot])
                    .await
                    .map_err(|e| Error::query(format!("dropping the slot {slot}"), &e))?;
                return Ok(true);
            }
            Some(true) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    Err(Error::Internal(format!(
        "the replication slot {slot} stayed in use for 10 s: stop its subscriber, then run init-slate-db replicate --stop again"
    )))
}

/// The highest id a database holds.
pub async fn last_id(client: &Client) -> Result<i64, Error> {
    client
        .query_one(
            "SELECT COALESCE(max(id), 0)::bigint FROM public.events",
            &[],
        )
        .await
        .map(|r| r.get(0))
        .map_err(|e| Error::query("reading the highest id", &e))
}

/// A slot on a source, for `status`.
#[derive(Debug, Clone, Serialize)]
pub struct SlotReport {
    pub slot: String,
    /// A subscriber is connected.
    pub active: bool,
    /// Who is connected: the destination, as its subscription names itself (`database on
    /// host:port`), while active.
    pub follower: Option<String>,
    /// WAL the source keeps for it, in bytes.
    pub retained_bytes: Option<i64>,
    /// `reserved`, `extended`, `unreserved` or `lost` (`lost`: its subscriber can never catch
    /// up).
    pub wal_status: Option<String>,
}

/// A source's replication, for `status`.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReplication {
    /// Whether the publication of events exists.
    pub publication: bool,
    pub slots: Vec<SlotReport>,
    /// `max_slot_wal_keep_size` in MB, -1 when unlimited (a dead replica can then fill the
    /// source's disk).
    pub max_slot_wal_keep_size_mb: i64,
}

/// A destination's subscription, for `status`.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionReport {
    pub subscription: String,
    /// The source it follows, `database on host:port` (read from the subscription's connection
    /// string, password left out; `null` for a role that may not read it).
    pub source: Option<String>,
    pub enabled: bool,
    /// The highest id applied.
    pub last_id: i64,
    /// Seconds since the source last reported, if it has.
    pub seconds_since_source: Option<f64>,
    /// Whether a worker is applying changes now.
    pub worker_running: bool,
}

/// What `status` shows of a store's replication (both parts empty when none).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Replication {
    pub source: Option<SourceReplication>,
    pub subscriptions: Vec<SubscriptionReport>,
}

/// `database on host:port` from a libpq connection string, nothing else of it (no password).
fn source_of(conninfo: &str) -> String {
    let value = |key: &str| -> String {
        let Some(start) = conninfo.find(&format!("{key}=")) else {
            return "?".into();
        };
        let rest = &conninfo[start + key.len() + 1..];
        match rest.strip_prefix('\'') {
            Some(quoted) => {
                let mut out = String::new();
                let mut chars = quoted.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => out.extend(chars.next()),
                        '\'' => break,
                        c => out.push(c),
                    }
                }
                out
            }
            None => rest.split_whitespace().next().unwrap_or("?").to_string(),
        }
    };
    format!("{} on {}:{}", value("dbname"), value("host"), value("port"))
}

/// The name a destination's subscription gives itself on the source (`application_name`), at
/// most 63 bytes as PostgreSQL keeps it.
pub fn follower_label(destination_database: &str, destination_endpoint: &str) -> String {
    let mut label = format!("{destination_database} on {destination_endpoint}");
    while label.len() > 63 {
        label.pop();
    }
    label
}

/// Reads the publication, slots and subscriptions of the database `client` is connected to.
/// A role that may not see them gets nothing rather than an error.
pub async fn replication(client: &Client) -> Replication {
    let mut report = Replication::default();
    let publication: Option<bool> = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)",
            &[&PUBLICATION],
        )
        .await
        .ok()
        .map(|r| r.get(0));
    let slots = client
        .query(
            "SELECT s.slot_name::text, s.active,
                    (pg_catalog.pg_current_wal_lsn() - s.restart_lsn)::bigint, s.wal_status,
                    NULLIF(r.application_name, '')
               FROM pg_catalog.pg_replication_slots s
               LEFT JOIN pg_catalog.pg_stat_replication r ON r.pid = s.active_pid
              WHERE s.database = current_database() AND s.plugin = 'pgoutput'
              ORDER BY 1",
            &[],
        )
        .await
        .unwrap_or_default();
    let keep: Option<i64> = client
        .query_one(
            "SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'max_slot_wal_keep_size'",
            &[],
        )
        .await
        .ok()
        .map(|r| r.get(0));
    if publication == Some(true) || !slots.is_empty() {
        report.source = Some(SourceReplication {
            publication: publication == Some(true),
            slots: slots
                .iter()
                .map(|r| SlotReport {
                    slot: r.get(0),
                    active: r.get(1),
                    follower: r.get(4),
                    retained_bytes: r.get(2),
                    wal_status: r.get(3),
                })
                .collect(),
            max_slot_wal_keep_size_mb: keep.unwrap_or(-1),
        });
    }
    let subscriptions = client
        .query(
            "SELECT s.subname::text, s.subenabled,
                    extract(epoch FROM now() - max(st.latest_end_time))::float8,
                    bool_or(st.pid IS NOT NULL)
               FROM pg_catalog.pg_subscription s
               LEFT JOIN pg_catalog.pg_stat_subscription st ON st.subid = s.oid
              WHERE s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
              GROUP BY s.subname, s.subenabled ORDER BY 1",
            &[],
        )
        .await
        .unwrap_or_default();
    if !subscriptions.is_empty() {
        let applied = last_id(client).await.unwrap_or(0);
        // subconninfo is readable by superusers only (and from 16 by the owner): try it alone.
        let sources: Vec<(String, String)> = client
            .query(
                "SELECT subname::text, subconninfo FROM pg_catalog.pg_subscription",
                &[],
            )
            .await
            .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            .unwrap_or_default();
        report.subscriptions = subscriptions
            .iter()
            .map(|r| SubscriptionReport {
                source: sources
                    .iter()
                    .find(|(name, _)| *name == r.get::<_, String>(0))
                    .map(|(_, conninfo)| source_of(conninfo)),
                subscription: r.get(0),
                enabled: r.get(1),
                last_id: applied,
                seconds_since_source: r.get(2),
                worker_running: r.get::<_, Option<bool>>(3).unwrap_or(false),
            })
            .collect();
    }
    report
}
