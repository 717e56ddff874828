//! Removing what a failed or interrupted run created: by the OID recorded at creation and the
//! run id in its marker, never by name alone, reconnecting after a lost connection.

use tokio_postgres::Client;
use tracing::{info, warn};

use super::{database_oid, Ledger, Marker};
use crate::connect::Connector;
use crate::pg::{quote_identifier, PgFailure};
use crate::retry::{self, Backoff, CLEANUP_DEADLINE};

/// Removes what the run created and not published, and says what happened: `None` when it
/// created nothing. Reconnects with backoff for up to [`CLEANUP_DEADLINE`].
pub async fn discard(connector: &mut Connector, ledger: &Ledger, keep: bool) -> Option<String> {
    let state = ledger.state();
    if state.published {
        return None;
    }
    let (temp, oid, run) = match (&state.built, &state.creating) {
        (Some(build), _) => (
            build.temp.clone(),
            Some(build.oid),
            Some(build.marker.run.clone()),
        ),
        (None, Some(temp)) => (temp.clone(), None, None),
        (None, None) => return None,
    };
    let by_hand = format!(
        "remove it with DROP DATABASE {} WITH (FORCE), or run init-slate-db again for this name, which removes it",
        quote_identifier(&temp)
    );
    if keep && oid.is_some() {
        warn!("keeping the temporary database \"{temp}\" as --keep-on-failure asks");
        return Some(format!(
            "the temporary database \"{temp}\" was kept (--keep-on-failure); {by_hand}"
        ));
    }
    let mut backoff = Backoff::new(retry::CLEANUP, Some(CLEANUP_DEADLINE));
    loop {
        let last = match connector.connect(&state.maintenance_db).await {
            Ok(client) => {
                let oid = match oid {
                    Some(oid) => Some(oid),
                    // The CREATE DATABASE was cut short: it may or may not have happened.
                    None => database_oid(&client, &temp).await.ok().flatten(),
                };
                let Some(oid) = oid else {
                    return Some("nothing was created".into());
                };
                match drop_by_oid(&client, oid, &temp, run.as_deref()).await {
                    Ok(Some(name)) => {
                        info!("dropped the temporary database \"{name}\" created by this run");
                        return Some(format!(
                            "the temporary database \"{name}\" created by this run was dropped"
                        ));
                    }
                    Ok(None) => return Some("nothing was left behind".into()),
                    Err(failure) => failure.to_string(),
                }
            }
            Err(error) => error.to_string(),
        };
        if !backoff.pause().await {
            warn!(%last, "could not remove the temporary database \"{temp}\"");
            return Some(format!(
                "removing the temporary database \"{temp}\" failed for {} s ({last}): {by_hand}",
                CLEANUP_DEADLINE.as_secs()
            ));
        }
    }
}

/// Drops the database with `oid` if it still exists under the temporary name `temp` (and, with
/// `run`, only if its marker carries that run id). Returns the name dropped, `None` if there was
/// nothing to drop. A build that was published meanwhile has the requested name: never dropped.
pub(super) async fn drop_by_oid(
    client: &Client,
    oid: u32,
    temp: &str,
    run: Option<&str>,
) -> Result<Option<String>, PgFailure> {
    let row = client
        .query_opt(
            "SELECT datname::text, pg_catalog.shobj_description(oid, 'pg_database')
               FROM pg_catalog.pg_database WHERE oid = $1",
            &[&oid],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let name: String = row.get(0);
    if name != temp {
        return Ok(None);
    }
    if let Some(run) = run {
        let marker = row
            .get::<_, Option<String>>(1)
            .and_then(|text| serde_json::from_str::<Marker>(&text).ok());
        if marker.is_some_and(|m| m.run != run) {
            return Ok(None);
        }
    }
    // FORCE ends sessions still in it: ours, whose server process may not have exited yet.
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_identifier(&name)
        ))
        .await?;
    Ok(Some(name))
}
