//! The run's keeper: a session of its own on the maintenance database that lives as long as the
//! run, named in the build's marker. Other runs judge the build alive while that session
//! exists. An idle session can be ended under a live run (an idle-connection reaper, a network
//! blip): the keeper notices within [`PING`], reconnects, and names its new session in the
//! marker, well within the [`super::ABANDON_GRACE`] another run waits before it removes a
//! build. A run that is killed takes its keeper with it.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::Client;
use tracing::{info, warn};

use super::{Marker, Staged};
use crate::connect::Connector;
use crate::error::Error;
use crate::pg::{quote_identifier, quote_literal};

/// How often the keeper checks its session.
pub const PING: Duration = Duration::from_secs(1);

/// A session, as `pg_stat_activity` names it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Session {
    pub pid: i32,
    /// `backend_start`, seconds since the epoch: a reused pid is not the same session.
    pub start: f64,
}

/// The session `client` is.
pub async fn identify(client: &Client) -> Result<Session, Error> {
    let row = client
        .query_one(
            "SELECT pg_backend_pid(), COALESCE(extract(epoch FROM backend_start)::float8, 0)
               FROM pg_catalog.pg_stat_activity WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| Error::query("identifying the run's keeper session", &e))?;
    Ok(Session {
        pid: row.get(0),
        start: row.get(1),
    })
}

/// The running keeper; dropping it stops it (and closes its session).
pub struct Keeper(JoinHandle<()>);

impl Drop for Keeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps `client`'s session (named in `staged`'s marker) alive for the run.
pub fn spawn(
    client: Client,
    connector: Connector,
    maintenance_db: String,
    staged: Staged,
) -> Keeper {
    Keeper(tokio::spawn(keep(
        client,
        connector,
        maintenance_db,
        staged,
    )))
}

async fn keep(
    mut client: Client,
    mut connector: Connector,
    maintenance_db: String,
    staged: Staged,
) {
    loop {
        tokio::time::sleep(PING).await;
        if client.simple_query("SELECT 1").await.is_ok() {
            continue;
        }
        warn!(temporary = %staged.temp, "the run's keeper session was ended; reconnecting");
        client = loop {
            match connector.connect(&maintenance_db).await {
                Ok(client) => break client,
                Err(error) => {
                    warn!(%error, "reconnecting the keeper session failed; trying again");
                    tokio::time::sleep(PING).await;
                }
            }
        };
        match remark(&client, &staged).await {
            Ok(true) => {
                info!(temporary = %staged.temp, "the build's marker names the new keeper session")
            }
            Ok(false) => return, // published or removed meanwhile: nothing to keep
            Err(error) => warn!(%error, "re-marking the build failed; trying again"),
        }
    }
}

/// Names `client`'s session in the build's marker, if the database is still this run's build.
async fn remark(client: &Client, staged: &Staged) -> Result<bool, Error> {
    let session = identify(client).await?;
    let row = client
        .query_opt(
            "SELECT datname::text, pg_catalog.shobj_description(oid, 'pg_database')
               FROM pg_catalog.pg_database WHERE oid = $1",
            &[&staged.oid],
        )
        .await
        .map_err(|e| Error::query("reading the build's marker", &e))?;
    let Some(row) = row else { return Ok(false) };
    let name: String = row.get(0);
    let ours = row
        .get::<_, Option<String>>(1)
        .and_then(|text| serde_json::from_str::<Marker>(&text).ok())
        .is_some_and(|m| m.run == staged.marker.run);
    if name != staged.temp || !ours {
        return Ok(false);
    }
    let marker = Marker {
        backend_pid: session.pid,
        backend_start: session.start,
        ..staged.marker.clone()
    };
    let json = serde_json::to_string(&marker).unwrap_or_default();
    client
        .batch_execute(&format!(
            "COMMENT ON DATABASE {} IS {}",
            quote_identifier(&staged.temp),
            quote_literal(&json)
        ))
        .await
        .map_err(|e| Error::query("re-marking the build", &e))?;
    Ok(true)
}
