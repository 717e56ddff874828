//! Whose a temporary database is: a live run's, or one that ended (for `claim`), and the
//! leftovers `status` and `list` report.

use serde::Serialize;
use tokio_postgres::Client;

use super::{Marker, TEMP_PREFIX};
use crate::error::Error;

/// Who holds a temporary database.
pub(super) enum Holder {
    /// It no longer exists.
    Gone,
    /// A run that is still alive: its description.
    Alive(String),
    /// No comment at all: a build a moment old (marked right after CREATE DATABASE), or a
    /// database of someone else's.
    Unmarked,
    /// A comment that is not the tool's marker for this name: not the tool's build, why.
    Foreign(String),
    /// The tool's build whose run's keeper session is gone: OID and marker. The run may be
    /// reconnecting; only a claim that sees it so for [`super::ABANDON_GRACE`] removes it.
    Dead(u32, Marker),
}

/// Examines the temporary database `temp`; with `requested`, a marker for another name is
/// foreign.
pub(super) async fn examine(
    maintenance: &Client,
    temp: &str,
    requested: Option<&str>,
) -> Result<Holder, Error> {
    let row = maintenance
        .query_opt(
            "SELECT d.oid, pg_catalog.shobj_description(d.oid, 'pg_database'),
                    (SELECT count(*) FROM pg_catalog.pg_stat_activity a WHERE a.datname = d.datname)
               FROM pg_catalog.pg_database d WHERE d.datname = $1",
            &[&temp],
        )
        .await
        .map_err(|e| Error::query(format!("looking at the temporary database \"{temp}\""), &e))?;
    let Some(row) = row else {
        return Ok(Holder::Gone);
    };
    let oid: u32 = row.get(0);
    let sessions: i64 = row.get(2);
    let Some(comment) = row.get::<_, Option<String>>(1) else {
        return Ok(if sessions > 0 {
            Holder::Alive(format!(
                "an unmarked build with {sessions} session(s) in it"
            ))
        } else {
            Holder::Unmarked
        });
    };
    let marker = match serde_json::from_str::<Marker>(&comment) {
        Ok(marker) if marker.tool == "init-slate-db" => marker,
        _ => {
            return Ok(Holder::Foreign(
                "its comment is not the tool's marker".into(),
            ))
        }
    };
    if let Some(requested) = requested {
        if marker.requested != requested {
            return Ok(Holder::Foreign(format!(
                "its marker names \"{}\"",
                marker.requested
            )));
        }
    }
    // The run's maintenance session lives as long as the run. Sessions still in the temporary
    // database do not keep it alive: a killed client's backend may run its last query to the
    // end, and DROP ... WITH (FORCE) ends it.
    if session_alive(maintenance, &marker).await? {
        return Ok(Holder::Alive(marker.describe()));
    }
    Ok(Holder::Dead(oid, marker))
}

/// Whether the marker's maintenance session still exists.
async fn session_alive(client: &Client, marker: &Marker) -> Result<bool, Error> {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity
                             WHERE pid = $1 AND (backend_start IS NULL
                                   OR abs(extract(epoch FROM backend_start)::float8 - $2) < 0.001))",
            &[&marker.backend_pid, &marker.backend_start],
        )
        .await
        .map(|row| row.get(0))
        .map_err(|e| Error::query("checking whether another run is alive", &e))
}

/// Whether a leftover build's run is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum LeftoverState {
    /// Its run is alive.
    Building,
    /// Its run ended before the store was complete: the next run for the name removes it.
    Abandoned,
    /// Not the tool's build (no marker, or another's): never removed, and a run for its name
    /// is refused until someone renames or drops it.
    Foreign,
}

/// A leftover build on the server, for `status`.
#[derive(Debug, Clone, Serialize)]
pub struct Leftover {
    pub database: String,
    /// The requested name, if marked.
    pub requested: Option<String>,
    pub state: LeftoverState,
    /// Whose build, if marked.
    pub run: Option<String>,
}

/// Every temporary database on the server, alive or abandoned.
pub async fn leftovers(client: &Client) -> Result<Vec<Leftover>, Error> {
    let rows = client
        .query(
            "SELECT datname::text FROM pg_catalog.pg_database WHERE starts_with(datname, $1) ORDER BY 1",
            &[&TEMP_PREFIX],
        )
        .await
        .map_err(|e| Error::query("listing temporary databases", &e))?;
    let mut found = Vec::new();
    for row in rows {
        let database: String = row.get(0);
        let (state, marker) = match examine(client, &database, None).await? {
            Holder::Gone => continue,
            Holder::Alive(_) => (LeftoverState::Building, None),
            Holder::Unmarked | Holder::Foreign(_) => (LeftoverState::Foreign, None),
            Holder::Dead(_, marker) => (LeftoverState::Abandoned, Some(marker)),
        };
        let marker = match marker {
            Some(marker) => Some(marker),
            None => marker_of(client, &database).await?,
        };
        found.push(Leftover {
            database,
            requested: marker.as_ref().map(|m| m.requested.clone()),
            state,
            run: marker.as_ref().map(Marker::describe),
        });
    }
    Ok(found)
}

async fn marker_of(client: &Client, database: &str) -> Result<Option<Marker>, Error> {
    let row = client
        .query_opt(
            "SELECT pg_catalog.shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database WHERE datname = $1",
            &[&database],
        )
        .await
        .map_err(|e| Error::query("reading a temporary database's marker", &e))?;
    Ok(row
        .and_then(|r| r.get::<_, Option<String>>(0))
        .and_then(|text| serde_json::from_str(&text).ok()))
}
