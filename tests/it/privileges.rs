//! Privileges are checked before anything is created: CREATEDB for any database, and for a
//! source database the right to install dblink.

use crate::support::{run, Cluster, CREATOR, CREATOR_PASSWORD, PLAIN, PLAIN_PASSWORD};

#[tokio::test]
async fn role_without_createdb_is_refused_and_nothing_is_created() {
    let cluster = Cluster::start().await;
    let outcome = run(cluster.tool_as(PLAIN, Some(PLAIN_PASSWORD)).args([
        "-n",
        "by_plain",
        "-t",
        "destination",
    ]));
    outcome.assert_code(5);
    assert_eq!(
        outcome.error_lines(),
        ["error: role \"plain\" may not create databases: it needs the CREATEDB attribute (ALTER ROLE \"plain\" CREATEDB) or superuser; nothing was created"]
    );
    assert!(!cluster.database_exists("by_plain").await);
}

#[tokio::test]
async fn createdb_only_role_is_refused_a_source_database_and_nothing_is_left_behind() {
    let cluster = Cluster::start().await;
    let outcome = run(cluster.tool_as(CREATOR, Some(CREATOR_PASSWORD)).args([
        "-n",
        "by_creator",
        "-t",
        "source",
    ]));
    outcome.assert_code(5);
    let errors = outcome.error_lines();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("may not install the dblink extension"),
        "{errors:?}"
    );
    assert!(errors[0].contains("superuser"), "{errors:?}");
    assert!(!cluster.database_exists("by_creator").await);
    // Nothing left under the temporary name either.
    assert!(
        !cluster
            .database_exists(&init_slate_db::store::staging::temp_name("by_creator"))
            .await
    );
}

#[tokio::test]
async fn a_createdb_role_on_a_server_that_trusts_dblink_gets_a_verified_source() {
    // As on managed services: the admin role is not a superuser, yet may install dblink.
    let cluster = Cluster::start_with_trusted_dblink().await;
    let outcome = run(cluster.tool_as(CREATOR, Some(CREATOR_PASSWORD)).args([
        "-n",
        "managed_source",
        "-t",
        "source",
    ]));
    outcome.assert_code(0);
    run(cluster
        .tool_as(CREATOR, Some(CREATOR_PASSWORD))
        .args(["status", "-d", "managed_source"]))
    .assert_code(0);
    let client = cluster.superuser_client("managed_source").await;
    let inserted: i32 = client
        .query_one("SELECT insert_events($1)", &[&"($1[1], $2, '{}')"])
        .await
        .unwrap()
        .get(0);
    assert_eq!(inserted, 1);
}

#[tokio::test]
async fn createdb_only_role_may_create_a_destination_database() {
    let cluster = Cluster::start().await;
    run(cluster.tool_as(CREATOR, Some(CREATOR_PASSWORD)).args([
        "-n",
        "replica_by_creator",
        "-t",
        "destination",
    ]))
    .assert_code(0);
    let owner: String = cluster
        .superuser_client("postgres")
        .await
        .query_one(
            "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = 'replica_by_creator'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, CREATOR);
}

#[tokio::test]
async fn createdb_only_role_may_create_a_source_when_the_template_has_dblink() {
    let cluster = Cluster::start().await;
    let template = cluster.superuser_client("template1").await;
    template
        .batch_execute("CREATE EXTENSION dblink")
        .await
        .unwrap();
    drop(template);
    cluster.wait_until_idle("template1").await;
    run(cluster.tool_as(CREATOR, Some(CREATOR_PASSWORD)).args([
        "-n",
        "src_by_creator",
        "-t",
        "source",
    ]))
    .assert_code(0);
    let client = cluster.superuser_client("src_by_creator").await;
    let applied: i64 = client
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        applied,
        i64::from(init_slate_db::store::layout::Layout::Source.latest_version())
    );
}
