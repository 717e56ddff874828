//! The timeouts DBAs set for applications on a role (`ALTER ROLE ... SET statement_timeout`)
//! do not apply to the tool's sessions: every command succeeds under each of them, with pauses
//! that outlast the timeout at the steps that used to fail (a long statement, an idle
//! maintenance session, a snapshot open while the copy runs).

use crate::support::{run, Cluster};

const ROLE: &str = "timed";
const ROLE_PASSWORD: &str = "timed-pw";

#[tokio::test]
async fn every_command_succeeds_under_each_timeout_a_role_may_carry() {
    let cluster = Cluster::start().await;
    let admin = cluster.superuser_client("postgres").await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{ROLE_PASSWORD}'"
        ))
        .await
        .unwrap();
    run(cluster.tool().args(["-n", "backup", "-t", "destination"])).assert_code(0);
    cluster
        .superuser_client("backup")
        .await
        .batch_execute(
            "INSERT INTO events SELECT g, '2026-01-01'::timestamptz + g * interval '1 ms', jsonb_build_object('n', g)
               FROM generate_series(1, 20000) g",
        )
        .await
        .unwrap();
    let timeouts: Vec<String> = admin
        .query(
            "SELECT name FROM pg_settings WHERE name IN ('statement_timeout', 'idle_in_transaction_session_timeout',
                                                         'idle_session_timeout', 'transaction_timeout', 'lock_timeout')
              ORDER BY name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(timeouts.len() >= 3, "{timeouts:?}");
    for (index, timeout) in timeouts.iter().enumerate() {
        admin
            .batch_execute(&format!(
                "ALTER ROLE {ROLE} RESET ALL; ALTER ROLE {ROLE} SET {timeout} = '200ms'"
            ))
            .await
            .unwrap();
        let tool = || {
            let mut command = cluster.tool_as(ROLE, Some(ROLE_PASSWORD));
            command.env("INIT_SLATE_DB_TEST_PAUSE_SECS", "0.6");
            command
        };
        let source = format!("source_{index}");
        let restored = format!("restored_{index}");
        // create: a statement that runs 0.6 s, the maintenance session idle meanwhile.
        let outcome = run(tool()
            .args(["-n", &source, "-t", "source"])
            .env("INIT_SLATE_DB_TEST_PAUSE", "migrating"));
        assert_eq!(
            outcome.code(),
            0,
            "create under {timeout}: {}",
            outcome.stderr()
        );
        // restore: the copy outlasts the timeout, the backup's snapshot open all along.
        let outcome = run(tool()
            .args(["restore", "-n", &restored, "--from-host", "127.0.0.1"])
            .args([
                "--from-port",
                &cluster.port.to_string(),
                "--from-database",
                "backup",
            ])
            .args(["--from-user", ROLE])
            .env("INIT_SLATE_DB_FROM_PASSWORD", ROLE_PASSWORD)
            .env("INIT_SLATE_DB_TEST_COPY_CHUNK_DELAY_MS", "150"));
        assert_eq!(
            outcome.code(),
            0,
            "restore under {timeout}: {}",
            outcome.stderr()
        );
        // migrate an older store; status, verify and list.
        let older = format!("older_{index}");
        drop(
            cluster
                .database_at(&older, init_slate_db::store::layout::Layout::Source, 8)
                .await,
        );
        for args in [
            vec!["migrate", "-d", older.as_str()],
            vec!["status", "-d", restored.as_str()],
            vec![
                "verify",
                "-d",
                restored.as_str(),
                "--replica-database",
                "backup",
                "--exact",
            ],
            vec!["list"],
        ] {
            let outcome = run(tool().args(&args));
            assert_eq!(
                outcome.code(),
                0,
                "{args:?} under {timeout}: {}",
                outcome.stderr()
            );
        }
    }
}
