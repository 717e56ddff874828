//! The source database at work: insert_events, the eventsinsert notifications, the
//! command-check trigger, concurrent writers, and restore_events.

use std::time::Duration;

use crate::support::{insert, run, values, waits_on_a_lock, Cluster};
use init_slate_db::store::layout::Layout;
use serde_json::Value;
use tokio_postgres::Client;

async fn source(cluster: &Cluster, name: &str) -> Client {
    run(cluster.tool().args(["-n", name, "-t", "source"])).assert_code(0);
    cluster.superuser_client(name).await
}

async fn error_of(client: &Client, values_text: &str) -> String {
    let error = insert(client, values_text)
        .await
        .expect_err("insert_events should refuse");
    error
        .as_db_error()
        .expect("a server error")
        .message()
        .to_string()
}

#[tokio::test]
async fn insert_events_assigns_consecutive_ids_and_one_timestamp_per_call() {
    let cluster = Cluster::start().await;
    let client = source(&cluster, "writes").await;
    assert_eq!(
        insert(
            &client,
            &values(&[r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#])
        )
        .await
        .unwrap(),
        3
    );
    // No spaces between rows or parameters: clients send both forms.
    assert_eq!(
        insert(&client, r#"($1[1],$2,'{"n":4}'),($1[2],$2,'{"n":5}')"#)
            .await
            .unwrap(),
        2
    );
    let rows = client
        .query(
            "SELECT id, ts::text, event->>'n' FROM events ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    let ns: Vec<String> = rows.iter().map(|r| r.get(2)).collect();
    assert_eq!(ns, ["1", "2", "3", "4", "5"]);
    let ts: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
    assert!(
        ts[0] == ts[1] && ts[1] == ts[2],
        "one timestamp for a call: {ts:?}"
    );
    assert_eq!(ts[3], ts[4]);
    assert_ne!(
        ts[2], ts[3],
        "each call (transaction) gets its own timestamp"
    );
    let next: i64 = client
        .query_one("SELECT id FROM id", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, 6);
}

#[tokio::test]
async fn insert_events_keeps_doubled_quotes_and_treats_parameter_lookalikes_as_the_original_did() {
    let cluster = Cluster::start().await;
    let client = source(&cluster, "lookalikes").await;
    assert_eq!(
        insert(&client, &values(&[r#"{"text":"it's 'quoted'"}"#]))
            .await
            .unwrap(),
        1
    );
    let stored: String = client
        .query_one("SELECT event->>'text' FROM events WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, "it's 'quoted'");
    // The original scans the whole text for `$1[n]` and `$2,`: a lookalike inside an event
    // value counts as a parameter. That is part of the contract; clients must not send one.
    assert_eq!(
        error_of(&client, &values(&[r#"{"text":"costs $1[9]"}"#])).await,
        "Parameter index is not consecutive at ------> 9, previous index ------> 1"
    );
    assert_eq!(
        error_of(&client, &values(&[r#"{"text":"$2, each"}"#])).await,
        "Number of rows to be inserted (1) does not match number of rows with a ts substitution parameter (2)"
    );
}

#[tokio::test]
async fn insert_events_raises_the_specification_errors() {
    let cluster = Cluster::start().await;
    let client = source(&cluster, "refusals").await;
    assert!(error_of(&client, "")
        .await
        .starts_with("No inserted rows found with id substitution parameters"));
    assert_eq!(
        error_of(&client, r#"($1[1], $2, '{}'),($1[3], $2, '{}')"#).await,
        "Parameter index is not consecutive at ------> 3, previous index ------> 1"
    );
    assert_eq!(
        error_of(&client, r#"($1[2], $2, '{}'),($1[3], $2, '{}')"#).await,
        "Number of rows to be inserted (2) does not match the highest row index (3)"
    );
    assert_eq!(
        error_of(&client, r#"($1[1], now(), '{}'),($1[2], $2, '{}')"#).await,
        "Number of rows to be inserted (2) does not match number of rows with a ts substitution parameter (1)"
    );
    // Refused calls use no ids.
    let next: i64 = client
        .query_one("SELECT id FROM id", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, 1);
    assert_eq!(insert(&client, &values(&["{}"])).await.unwrap(), 1);
    let id: i64 = client
        .query_one("SELECT max(id) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(id, 1);
}

#[tokio::test]
async fn every_inserted_row_is_notified_on_eventsinsert_with_table_id_and_event() {
    let cluster = Cluster::start().await;
    let client = source(&cluster, "notified").await;
    let (_listener, mut notifications) =
        crate::support::listen(&cluster, "notified", "eventsinsert").await;
    insert(
        &client,
        &values(&[r#"{"entityName":"Order","n":1}"#, r#"{"n":2}"#]),
    )
    .await
    .unwrap();
    for expected_id in [1, 2] {
        let notification = tokio::time::timeout(Duration::from_secs(10), notifications.recv())
            .await
            .expect("notification within 10 s")
            .unwrap();
        assert_eq!(notification.channel(), "eventsinsert");
        let payload: Value = serde_json::from_str(notification.payload()).unwrap();
        let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["event", "id", "table"]);
        assert_eq!(payload["table"], "events");
        assert_eq!(payload["id"], expected_id);
        assert_eq!(payload["event"]["n"], expected_id);
    }
}

#[tokio::test]
async fn update_delete_and_truncate_on_events_are_refused() {
    let cluster = Cluster::start().await;
    let client = source(&cluster, "guarded").await;
    insert(&client, &values(&["{}"])).await.unwrap();
    for (statement, op) in [
        ("UPDATE events SET event = '{}'", "UPDATE"),
        ("DELETE FROM events", "DELETE"),
        ("TRUNCATE events", "TRUNCATE"),
    ] {
        let error = client.batch_execute(statement).await.expect_err(statement);
        assert_eq!(
            error.as_db_error().unwrap().message(),
            format!("cannot perform SQL command on events table: {op}")
        );
    }
    let count: i64 = client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_writers_stay_gapless() {
    let cluster = Cluster::start().await;
    drop(source(&cluster, "contended").await);
    let pool = crate::support::pool(&cluster, "contended", 8);
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut client = pool.get().await.unwrap();
                let mut written = 0usize;
                for call in 0..40usize {
                    let batch = 1 + (writer + call) % 7;
                    let events: Vec<String> = (0..batch)
                        .map(|i| format!(r#"{{"writer":{writer},"call":{call},"i":{i}}}"#))
                        .collect();
                    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
                    let tx = client.transaction().await.unwrap();
                    let n: i32 = tx
                        .query_one("SELECT insert_events($1)", &[&values(&refs)])
                        .await
                        .unwrap()
                        .get(0);
                    // Holding the transaction open a moment keeps the others waiting on the id lock.
                    if call % 10 == 0 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    tx.commit().await.unwrap();
                    written += n as usize;
                }
                written
            })
        })
        .collect();
    let mut total = 0;
    for writer in writers {
        total += writer.await.unwrap();
    }
    let client = cluster.superuser_client("contended").await;
    let row = client
        .query_one(
            "SELECT count(*), min(id), max(id), count(DISTINCT id) FROM events",
            &[],
        )
        .await
        .unwrap();
    let (count, min, max, distinct): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(count as usize, total);
    assert_eq!(
        (min, max, distinct),
        (1, count, count),
        "ids must be exactly 1..=count"
    );
    let next: i64 = client
        .query_one("SELECT id FROM id", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, count + 1);
    // Each call's rows are consecutive and share one timestamp.
    let split_calls: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT event->>'writer' w, event->>'call' c, max(id) - min(id) + 1 AS span, count(*) AS n, count(DISTINCT ts) AS stamps
                                    FROM events GROUP BY 1, 2) calls WHERE span <> n OR stamps <> 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(split_calls, 0);
}

#[tokio::test]
async fn restore_events_copies_a_destination_into_a_fresh_source_with_a_quoted_password() {
    let cluster = Cluster::start().await;
    // The superuser's password has a space, a quote and a backslash: the original's
    // unquoted connection string could not carry it.
    assert!(
        crate::support::SUPERUSER_PASSWORD.contains(' ')
            && crate::support::SUPERUSER_PASSWORD.contains('\'')
    );
    run(cluster.tool().args(["-n", "backup", "-t", "destination"])).assert_code(0);
    let backup = cluster.superuser_client("backup").await;
    backup
        .batch_execute(
            "INSERT INTO events (id, ts, event)
             SELECT g, now() - (100 - g) * interval '1 second', jsonb_build_object('n', g, 'entityName', 'Order')
               FROM generate_series(1, 100) g",
        )
        .await
        .unwrap();
    let restored = source(&cluster, "restored").await;
    let row = restored
        .query_one(
            "SELECT rows_restored, next_insert_id FROM restore_events($1, $2, $3, $4, $5)",
            &[
                &"127.0.0.1",
                &"backup",
                &crate::support::SUPERUSER,
                &crate::support::SUPERUSER_PASSWORD,
                &(cluster.port as i32),
            ],
        )
        .await
        .unwrap();
    let (rows, next): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!((rows, next), (100, 101));
    let mismatches: i64 = restored
        .query_one(
            "SELECT count(*) FROM events r FULL JOIN dblink($1, 'SELECT id, ts, event FROM events') AS b(id bigint, ts timestamptz, event jsonb)
                ON r.id = b.id WHERE r.ts IS DISTINCT FROM b.ts OR r.event IS DISTINCT FROM b.event",
            &[&format!("host=127.0.0.1 port={} dbname=backup user=slate_admin password='super secret\\'s \\\\pw'", cluster.port)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(mismatches, 0);
    // Writing continues where the backup ended.
    insert(&restored, &values(&["{}"])).await.unwrap();
    let max: i64 = restored
        .query_one("SELECT max(id) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(max, 101);
    // A second restore into the now non-empty source is refused.
    let error = restored
        .query_one(
            "SELECT * FROM restore_events($1, $2, $3, $4, $5)",
            &[
                &"127.0.0.1",
                &"backup",
                &crate::support::SUPERUSER,
                &crate::support::SUPERUSER_PASSWORD,
                &(cluster.port as i32),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.as_db_error().unwrap().message(),
        "Source events table row count (101) is not 0"
    );
}

#[tokio::test]
async fn restore_events_keeps_the_original_four_argument_call() {
    let cluster = Cluster::start().await;
    let client = source(&cluster, "four_args").await;
    // The spec's named-argument call still resolves (fromPort defaults to NULL); the backup
    // host name does not resolve, so dblink's connection error proves the call got that far.
    let error = client
        .query_one(
            "SELECT restore_events(fromHost := 'no-such-host.invalid', fromDatabase := 'b', fromDatabaseUser := 'u', fromDatabasePassword := 'p w')",
            &[],
        )
        .await
        .unwrap_err();
    let message = error.as_db_error().unwrap().message().to_string();
    assert!(
        message.contains("could not establish connection"),
        "{message}"
    );
}

/// `n` rows of about 100 bytes each, as the contract's VALUES text.
fn batch(n: usize) -> String {
    (1..=n)
        .map(|i| format!("($1[{i}], $2, '{{\"entityName\":\"Order\",\"entityId\":\"order-{i}\",\"operation\":\"update\"}}')"))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn a_call_of_100000_rows_gets_ids_1_to_100000_and_one_timestamp() {
    let cluster = Cluster::start().await;
    let client = source(&cluster, "big_batch").await;
    assert_eq!(insert(&client, &batch(100_000)).await.unwrap(), 100_000);
    let row = client
        .query_one(
            "SELECT count(*), min(id), max(id), count(DISTINCT ts), (SELECT id FROM id),
                    bool_and(event->>'entityId' = 'order-' || id) FROM events",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 100_000);
    assert_eq!((row.get::<_, i64>(1), row.get::<_, i64>(2)), (1, 100_000));
    assert_eq!(row.get::<_, i64>(3), 1, "one timestamp per call");
    assert_eq!(row.get::<_, i64>(4), 100_001);
    assert!(row.get::<_, bool>(5), "each row got the id of its position");
    // The next call continues where this one ended.
    assert_eq!(insert(&client, &batch(2_000)).await.unwrap(), 2_000);
    let next: i64 = client
        .query_one("SELECT id FROM id", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, 102_001);
}

#[tokio::test]
async fn a_call_over_the_limit_is_refused_at_once_and_takes_no_id() {
    let cluster = Cluster::start().await;
    let client = source(&cluster, "over_limit").await;
    let message = error_of(&client, &batch(100_001)).await;
    assert_eq!(
        message,
        "insert_events: 100001 rows in one call exceed the limit of 100000 rows"
    );
    let next: i64 = client
        .query_one("SELECT id FROM id", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, 1);
}

#[tokio::test]
async fn markers_inside_an_event_that_would_leave_a_gap_raise_and_take_no_id() {
    let cluster = Cluster::start().await;
    let client = source(&cluster, "no_gap").await;
    for size in [1, 5, 2_000] {
        // The last event's text holds "$1[n+1]" and "$2,": counted as one more row than there is.
        let mut text = batch(size);
        text.push_str(&format!(
            ",($1[{}], $2, '{{\"note\":\"see $1[{}] and $2, too\"}}')",
            size + 1,
            size + 2
        ));
        let error = insert(&client, &text)
            .await
            .expect_err("a gap must be refused");
        let message = error.as_db_error().unwrap().message().to_string();
        assert_eq!(
            message,
            format!(
                "insert_events: {} rows were found but the text names {} rows; nothing was inserted and no id was taken",
                size + 1,
                size + 2
            )
        );
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM events), (SELECT id FROM id)",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            (row.get::<_, i64>(0), row.get::<_, i64>(1)),
            (0, 1),
            "size {size}"
        );
    }
}

#[tokio::test]
async fn large_texts_that_only_the_original_checks_accept_keep_their_events_intact() {
    let cluster = Cluster::start().await;
    let client = source(&cluster, "lookalikes").await;
    // "$1[x" inside an event is no marker for the original's checks; its text must survive.
    let mut text = batch(150).replacen(
        "\"operation\":\"update\"}')",
        "\"operation\":\"$1[x] and $1[ 2 ]\"}')",
        1,
    );
    text.push_str(";  \n");
    assert_eq!(insert(&client, &text).await.unwrap(), 150);
    // A well-formed large text ending in a comment, as the original's EXECUTE accepted it.
    let text = format!("{}\n-- sent by hand", batch(300));
    assert_eq!(insert(&client, &text).await.unwrap(), 300);
    let row = client
        .query_one(
            "SELECT count(*), min(id), max(id), (SELECT id FROM id),
                    (SELECT event->>'operation' FROM events WHERE id = 1),
                    bool_and(event->>'entityId' = 'order-' || CASE WHEN id > 150 THEN id - 150 ELSE id END)
               FROM events",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 450);
    assert_eq!((row.get::<_, i64>(1), row.get::<_, i64>(2)), (1, 450));
    assert_eq!(row.get::<_, i64>(3), 451);
    assert_eq!(row.get::<_, String>(4), "$1[x] and $1[ 2 ]");
    assert!(row.get::<_, bool>(5), "each row got the id of its position");
}

/// Calls insert_events with 150 rows while `holder` holds the id row, cancels the call once it
/// waits for that row (inside the EXECUTE of the prepared statement), and returns the SQL-level
/// prepared statements left in the caller's session, the rows and the next id.
async fn cancel_a_large_call_waiting_for_the_id_row(
    client: &Client,
    holder: &Client,
) -> (i64, i64, i64) {
    let caller: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    holder
        .batch_execute("BEGIN; SELECT 1 FROM id FOR UPDATE")
        .await
        .unwrap();
    let text = batch(150);
    let call = insert(client, &text);
    let cancel = async {
        while !waits_on_a_lock(holder, caller).await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        holder
            .query_one("SELECT pg_cancel_backend($1)", &[&caller])
            .await
            .unwrap();
    };
    let (result, ()) = tokio::join!(call, cancel);
    holder.batch_execute("ROLLBACK").await.unwrap();
    let error = result.expect_err("the call is cancelled");
    assert_eq!(
        error.as_db_error().unwrap().code().code(),
        "57014",
        "{error}"
    );
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM pg_prepared_statements WHERE from_sql),
                    (SELECT count(*) FROM events), (SELECT id FROM id)",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test]
async fn a_cancelled_large_call_leaves_no_prepared_statement_and_no_id_behind() {
    let cluster = Cluster::start().await;
    let client = source(&cluster, "cancelled").await;
    let holder = cluster.superuser_client("cancelled").await;
    assert_eq!(
        cancel_a_large_call_waiting_for_the_id_row(&client, &holder).await,
        (0, 0, 1)
    );
    // The same cancellation on V9, whose WHEN OTHERS handler a cancellation skips, leaves its
    // prepared statement behind: what this test would see if the fix went.
    let v9 = cluster.database_at("at_v9", Layout::Source, 9).await;
    let v9_holder = cluster.superuser_client("at_v9").await;
    assert_eq!(
        cancel_a_large_call_waiting_for_the_id_row(&v9, &v9_holder).await,
        (1, 0, 1)
    );
}

#[tokio::test]
async fn a_call_leaves_the_callers_prepared_statements_and_settings_alone() {
    let cluster = Cluster::start().await;
    let client = source(&cluster, "polite").await;
    client
        .batch_execute(
            "PREPARE slate_insert_events AS SELECT 42; SET plan_cache_mode = force_custom_plan",
        )
        .await
        .unwrap();
    for size in [3, 50, 5_000] {
        insert(&client, &batch(size)).await.unwrap();
        let mine: i32 = client
            .query_one("EXECUTE slate_insert_events", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(mine, 42, "size {size}");
        let mode: String = client
            .query_one("SHOW plan_cache_mode", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(mode, "force_custom_plan", "size {size}");
        let prepared: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_prepared_statements WHERE from_sql",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(prepared, 1, "only the caller's statement, size {size}");
    }
}

#[tokio::test]
async fn a_v8_store_migrated_to_the_new_insert_events_is_up_to_date_and_writes() {
    let cluster = Cluster::start().await;
    drop(cluster.database_at("at_v8", Layout::Source, 8).await);
    let client = cluster.superuser_client("at_v8").await;
    assert_eq!(insert(&client, &batch(10)).await.unwrap(), 10);
    drop(client);
    run(cluster.tool().args(["migrate", "-d", "at_v8"])).assert_code(0);
    run(cluster.tool().args(["status", "-d", "at_v8"])).assert_code(0);
    let client = cluster.superuser_client("at_v8").await;
    assert_eq!(insert(&client, &batch(2_000)).await.unwrap(), 2_000);
    let row = client
        .query_one(
            "SELECT count(*), max(id), (SELECT id FROM id) FROM events",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2)
        ),
        (2_010, 2_010, 2_011)
    );
}
