//! Append-only writers (source V11): a role holding only EXECUTE on insert_events and
//! append_events appends exactly what the owner's call appends and can do nothing else; one
//! text gets one answer at every batch size; a store migrated from V10 keeps its writers.

use std::time::Duration;

use crate::support::{insert, listen, pool_as, run, sqlstate, values, Cluster};
use init_slate_db::store::layout::Layout;
use tokio_postgres::Client;

const WRITER: &str = "app_writer";
const WRITER_PASSWORD: &str = "writer-secret-1";

/// The writer role: LOGIN, EXECUTE on the two functions of the append path, nothing else.
async fn create_writer(owner: &Client) {
    owner
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{WRITER}') THEN
                 CREATE ROLE {WRITER} LOGIN PASSWORD '{WRITER_PASSWORD}';
               END IF;
             END $$;
             GRANT EXECUTE ON FUNCTION insert_events(text), append_events(jsonb[], integer[]) TO {WRITER};"
        ))
        .await
        .unwrap();
}

fn batch(n: usize) -> String {
    (1..=n)
        .map(|i| format!(r#"($1[{i}], $2, '{{"n":{i}}}')"#))
        .collect::<Vec<_>>()
        .join(", ")
}

/// (id, event, whether the rows share one timestamp, next id)
async fn contents(client: &Client) -> (Vec<(i64, String)>, i64, i64) {
    let rows = client
        .query("SELECT id, event::text FROM events ORDER BY id", &[])
        .await
        .unwrap();
    let stamps: i64 = client
        .query_one("SELECT count(DISTINCT ts) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    let next: i64 = client
        .query_one("SELECT id FROM id", &[])
        .await
        .unwrap()
        .get(0);
    (
        rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        stamps,
        next,
    )
}

async fn notifications(
    receiver: &mut tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::Notification>,
    expected: usize,
) -> Vec<String> {
    let mut payloads = Vec::new();
    while payloads.len() < expected {
        match tokio::time::timeout(Duration::from_secs(10), receiver.recv()).await {
            Ok(Some(n)) => payloads.push(n.payload().to_string()),
            _ => break,
        }
    }
    payloads
}

#[tokio::test]
async fn a_writer_appends_exactly_what_the_owner_appends() {
    let cluster = Cluster::start().await;
    let owner = cluster.source("by_owner").await;
    let owner_side = cluster.source("by_writer").await;
    create_writer(&owner_side).await;
    let writer = cluster
        .client_as(WRITER, WRITER_PASSWORD, "by_writer")
        .await;
    let (_l1, mut owner_notes) = listen(&cluster, "by_owner", "eventsinsert").await;
    let (_l2, mut writer_notes) = listen(&cluster, "by_writer", "eventsinsert").await;

    let calls = [
        values(&[r#"{"entityName":"Order","n":1}"#]),
        batch(10),
        batch(150),
        // The other spellings clients send.
        r#"($1[1],$2,'{"tight":1}'),($1[2],$2,'{"tight":2}')"#.to_string(),
        format!("{};", batch(3)),
        format!("{} -- batch 42", batch(2)),
        r#"($1[1], $2, '{"text":"a; b"}')"#.to_string(),
        // $2 inside an event is the call's timestamp, as in the original.
        r#"($1[1], $2, jsonb_build_object('at', $2))"#.to_string(),
    ];
    for text in &calls {
        let by_owner = insert(&owner, text).await.unwrap();
        let by_writer = insert(&writer, text).await.unwrap();
        assert_eq!(by_owner, by_writer, "{text}");
    }
    let (owner_rows, owner_stamps, owner_next) = contents(&owner).await;
    let (writer_rows, writer_stamps, writer_next) = contents(&owner_side).await;
    assert_eq!(owner_rows.len(), 1 + 10 + 150 + 2 + 3 + 2 + 1 + 1);
    // The timestamps differ between the two stores; everything else is the same.
    let strip_at = |rows: Vec<(i64, String)>| -> Vec<(i64, String)> {
        rows.into_iter()
            .map(|(id, e)| (id, if e.contains("\"at\"") { "at".into() } else { e }))
            .collect()
    };
    assert_eq!(strip_at(writer_rows), strip_at(owner_rows));
    assert_eq!((writer_stamps, writer_next), (owner_stamps, owner_next));
    assert_eq!(owner_stamps, calls.len() as i64, "one timestamp per call");
    let at_matches_ts: bool = owner_side
        .query_one(
            "SELECT (event->>'at')::timestamptz = ts FROM events WHERE event ? 'at'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(at_matches_ts, "$2 in an event is the row's timestamp");
    let expected = owner_next as usize - 1;
    let owner_payloads = notifications(&mut owner_notes, expected).await;
    let writer_payloads = notifications(&mut writer_notes, expected).await;
    assert_eq!(owner_payloads.len(), expected);
    let strip = |p: Vec<String>| -> Vec<String> {
        p.into_iter()
            .map(|s| if s.contains("\"at\"") { "at".into() } else { s })
            .collect()
    };
    assert_eq!(strip(writer_payloads), strip(owner_payloads));
}

#[tokio::test]
async fn a_writer_can_do_nothing_but_append() {
    let cluster = Cluster::start().await;
    let owner = cluster.source("guarded").await;
    create_writer(&owner).await;
    let writer = cluster.client_as(WRITER, WRITER_PASSWORD, "guarded").await;
    assert_eq!(insert(&writer, &batch(3)).await.unwrap(), 3);

    let refused = [
        "INSERT INTO events (id, ts, event) VALUES (4, now(), '{}')",
        "UPDATE id SET id = id + 1000",
        "SELECT id FROM id FOR UPDATE",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE events SET event = '{}'",
        "ALTER TABLE events DISABLE TRIGGER check_sql_command",
        "CREATE TRIGGER t BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION filter_sql_command()",
        "LOCK TABLE id IN ACCESS EXCLUSIVE MODE",
        "SELECT * FROM events",
        "SELECT restore_events('h', 'd', 'u', 'p')",
        "SELECT dblink_connect('host=127.0.0.1')",
    ];
    for statement in refused {
        let error = writer
            .batch_execute(&format!("BEGIN; {statement}; COMMIT"))
            .await
            .expect_err(statement);
        writer.batch_execute("ROLLBACK").await.unwrap();
        let code = sqlstate(&error);
        assert!(code == "42501", "{statement}: {code} {error:?}");
    }
    // No id or timestamp of the text's own choosing: computed ids are the row's position, a
    // literal id or timestamp is refused, a "$2," hidden in an event does not make a literal
    // timestamp count.
    assert_eq!(
        insert(&writer, r#"($1[1] + 1000, $2, '{"forged":1}')"#)
            .await
            .unwrap(),
        1
    );
    let error = insert(&writer, r#"(7, $2, '{"text":"$1[1]"}')"#)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&error), "P0001", "{error:?}");
    let error = insert(
        &writer,
        r#"($1[1], '2000-01-01 00:00:00+00', '{"text":"$2, hidden"}')"#,
    )
    .await
    .unwrap_err();
    assert_eq!(sqlstate(&error), "P0001", "{error:?}");
    // append_events places an event by its subscript: only a plain array is taken.
    for events in [r#"'[1000:1000]={"{}"}'"#, r#"'{{"{}"},{"{}"}}'"#] {
        let error = writer
            .query_one(&format!("SELECT append_events({events}::jsonb[])"), &[])
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&error), "22023", "{events}: {error:?}");
    }
    // Markers inside an event do not count as rows, in any form of the text.
    for text in [
        r#"($1[1], $2, '{"a":"$1[2], $2, b"}')"#,
        r#"($1[1], $2, '{"a":"$1[2], $2, b"}');"#,
    ] {
        let error = insert(&writer, text).await.unwrap_err();
        assert_eq!(sqlstate(&error), "P0001", "{text}: {error:?}");
    }
    // No second statement, at any size.
    for size in [1, 101] {
        let error = insert(
            &writer,
            &format!("{}); UPDATE id SET id = id + 1000; SELECT (1", batch(size)),
        )
        .await
        .unwrap_err();
        assert_eq!(sqlstate(&error), "42601", "{error:?}");
    }
    // The text runs with the writer's rights: it cannot reach events or id.
    for text in [
        "($1[1], $2, (SELECT to_jsonb(count(*)) FROM events))",
        "($1[1], $2, (SELECT to_jsonb(id) FROM id))",
        "($1[1], $2, to_jsonb((SELECT restore_events('h', 'd', 'u', 'p'))))",
    ] {
        let error = insert(&writer, text).await.unwrap_err();
        assert!(sqlstate(&error) == "42501", "{text}: {error:?}");
    }
    let (rows, _, next) = contents(&owner).await;
    assert_eq!(
        rows.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![1, 2, 3, 4],
        "gapless, and nothing but the appends"
    );
    assert_eq!(next, 5);
    let triggers: i64 = owner
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal AND tgenabled = 'O'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(triggers, 2);
    // A role without the grants cannot call the functions at all (PUBLIC lost EXECUTE).
    owner
        .batch_execute("CREATE ROLE bystander LOGIN PASSWORD 'bystander-1'")
        .await
        .unwrap();
    let bystander = cluster
        .client_as("bystander", "bystander-1", "guarded")
        .await;
    for call in [
        "SELECT insert_events('($1[1], $2, ''{}'')')",
        "SELECT append_events(ARRAY['{}'::jsonb])",
        "SELECT restore_events('h', 'd', 'u', 'p')",
        "SELECT dblink_connect('host=127.0.0.1')",
    ] {
        let error = bystander.batch_execute(call).await.unwrap_err();
        assert_eq!(sqlstate(&error), "42501", "{call}: {error:?}");
    }
}

#[tokio::test]
async fn a_hostile_search_path_runs_nothing_as_the_owner() {
    let cluster = Cluster::start().await;
    let owner = cluster.source("shadowed").await;
    create_writer(&owner).await;
    // A schema of the writer's, shadowing what the append path and the NOTIFY trigger call:
    // whoever runs one of these is written down.
    owner
        .batch_execute(&format!(
            "CREATE SCHEMA trap AUTHORIZATION {WRITER};
             CREATE TABLE trap.caught (who name, what text);
             GRANT ALL ON SCHEMA trap TO PUBLIC;
             GRANT ALL ON trap.caught TO PUBLIC;"
        ))
        .await
        .unwrap();
    let writer = cluster.client_as(WRITER, WRITER_PASSWORD, "shadowed").await;
    writer
        .batch_execute(
            "CREATE FUNCTION trap.catch(what text) RETURNS void LANGUAGE sql
               AS $$ INSERT INTO trap.caught VALUES (current_user, what) $$;
             CREATE FUNCTION trap.octet_length(text) RETURNS integer LANGUAGE plpgsql
               AS $$ BEGIN PERFORM trap.catch('octet_length'); RETURN 0; END $$;
             CREATE FUNCTION trap.pg_notify(text, text) RETURNS void LANGUAGE plpgsql
               AS $$ BEGIN PERFORM trap.catch('pg_notify'); END $$;
             CREATE FUNCTION trap.cardinality(anyarray) RETURNS integer LANGUAGE plpgsql
               AS $$ BEGIN PERFORM trap.catch('cardinality'); RETURN 1; END $$;
             CREATE FUNCTION trap.transaction_timestamp() RETURNS timestamptz LANGUAGE plpgsql
               AS $$ BEGIN PERFORM trap.catch('transaction_timestamp'); RETURN now(); END $$;
             CREATE FUNCTION trap.unnest(jsonb[]) RETURNS SETOF jsonb LANGUAGE plpgsql
               AS $$ BEGIN PERFORM trap.catch('unnest'); END $$;
             CREATE FUNCTION trap.plus(bigint, integer) RETURNS bigint LANGUAGE plpgsql
               AS $$ BEGIN PERFORM trap.catch('+'); RETURN $1 OPERATOR(pg_catalog.+) $2; END $$;
             CREATE OPERATOR trap.+ (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = trap.plus);
             CREATE FUNCTION trap.eq(integer, integer) RETURNS boolean LANGUAGE plpgsql
               AS $$ BEGIN PERFORM trap.catch('='); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
             CREATE OPERATOR trap.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = trap.eq);
             SET search_path = trap, pg_catalog, public;",
        )
        .await
        .unwrap();
    // The trap works: an unqualified call in the writer's own session is caught.
    writer
        .batch_execute("SELECT octet_length('x')")
        .await
        .unwrap();
    let caught: Vec<(String, String)> = owner
        .query("SELECT who::text, what FROM trap.caught", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        caught,
        vec![(WRITER.to_string(), "octet_length".to_string())]
    );
    owner
        .batch_execute("DELETE FROM trap.caught")
        .await
        .unwrap();

    for text in [batch(1), batch(20), format!("{};", batch(2))] {
        assert!(insert(&writer, &text).await.unwrap() >= 1);
    }
    writer
        .query_one("SELECT append_events(ARRAY['{}'::jsonb])", &[])
        .await
        .unwrap();
    let as_owner: Vec<(String, String)> = owner
        .query(
            "SELECT who::text, what FROM trap.caught WHERE who <> $1",
            &[&WRITER],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(as_owner, vec![], "nothing ran with the owner's rights");
    let (rows, stamps, next) = contents(&owner).await;
    assert_eq!((rows.len(), next), (24, 25));
    assert_eq!(stamps, 4);
}

#[tokio::test]
async fn one_text_gets_one_answer_at_every_batch_size() {
    let cluster = Cluster::start().await;
    let owner = cluster.source("sizes").await;
    let mut next_id = 1i64;
    for size in [1usize, 100, 101, 1000] {
        let rows = batch(size);
        // Accepted: a trailing ";" or comment.
        for tail in [
            ";",
            "; -- batch 42",
            ";\n-- c",
            "; /* c */",
            " -- c",
            " /* c */",
        ] {
            let text = format!("{rows}{tail}");
            assert_eq!(
                insert(&owner, &text).await.unwrap(),
                size as i32,
                "{size} rows and {tail:?}"
            );
            next_id += size as i64;
        }
        // Refused, and nothing runs: more than the rows of one VALUES list.
        for (tail, code) in [
            (" ON CONFLICT DO NOTHING", "42601"),
            (" RETURNING id", "42601"),
            ("; UPDATE id SET id = id + 1000", "42601"),
            ("; SELECT 1", "42601"),
            // Fewer rows than the text names.
            (" LIMIT 0", "P0001"),
            (" LIMIT 0;", "P0001"),
        ] {
            let text = format!("{rows}{tail}");
            let error = insert(&owner, &text).await.unwrap_err();
            assert_eq!(
                sqlstate(&error),
                code,
                "{size} rows and {tail:?}: {error:?}"
            );
        }
        let next: i64 = owner
            .query_one("SELECT id FROM id", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(next, next_id, "{size} rows");
    }
    let (rows, _, _) = contents(&owner).await;
    assert_eq!(rows.len() as i64, next_id - 1);
    assert_eq!(rows.last().unwrap().0, next_id - 1, "no gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_writers_as_the_writer_role_stay_gapless() {
    let cluster = Cluster::start().await;
    let owner = cluster.source("crowded").await;
    create_writer(&owner).await;
    let pool = pool_as(&cluster, WRITER, WRITER_PASSWORD, "crowded", 8);
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let client = pool.get().await.unwrap();
                let mut written = 0i64;
                for call in 0..30usize {
                    // 1 to 150 rows: both sides of the old 100-row switch.
                    let size = [1, 7, 100, 101, 150][(writer + call) % 5];
                    let n: i32 = client
                        .query_one("SELECT insert_events($1)", &[&batch(size)])
                        .await
                        .unwrap()
                        .get(0);
                    written += i64::from(n);
                }
                written
            })
        })
        .collect();
    let mut total = 0;
    for writer in writers {
        total += writer.await.unwrap();
    }
    let row = owner
        .query_one(
            "SELECT count(*), min(id), max(id), count(DISTINCT id), (SELECT id FROM id) FROM events",
            &[],
        )
        .await
        .unwrap();
    let (count, min, max, distinct, next): (i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(count, total);
    assert_eq!((min, max, distinct, next), (1, count, count, count + 1));
}

#[tokio::test]
async fn a_v10_store_migrated_to_v11_keeps_its_writers() {
    let cluster = Cluster::start().await;
    drop(cluster.database_at("at_v10", Layout::Source, 10).await);
    let owner = cluster.superuser_client("at_v10").await;
    // A writer as V10 needed one: INSERT on events, SELECT and UPDATE on id.
    owner
        .batch_execute(
            "CREATE ROLE old_writer LOGIN PASSWORD 'old-writer-1';
             GRANT INSERT ON events TO old_writer;
             GRANT SELECT, UPDATE ON id TO old_writer;",
        )
        .await
        .unwrap();
    let old_writer = cluster
        .client_as("old_writer", "old-writer-1", "at_v10")
        .await;
    assert_eq!(insert(&old_writer, &batch(5)).await.unwrap(), 5);
    run(cluster.tool().args(["migrate", "-d", "at_v10"])).assert_code(0);
    run(cluster.tool().args(["status", "-d", "at_v10"])).assert_code(0);
    let old_writer = cluster
        .client_as("old_writer", "old-writer-1", "at_v10")
        .await;
    assert_eq!(insert(&old_writer, &batch(150)).await.unwrap(), 150);
    let (rows, stamps, next) = contents(&owner).await;
    assert_eq!((rows.len(), stamps, next), (155, 2, 156));
    // Only the roles that wrote before got EXECUTE; PUBLIC has none.
    let public_may: bool = owner
        .query_one(
            "SELECT has_function_privilege('public', 'insert_events(text)', 'EXECUTE')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!public_may);
}
