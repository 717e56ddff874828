//! Reading a store's access state from the catalog: the privileges on its database, schema
//! `public`, tables (and their columns) and functions, the roles named, the groups' members,
//! and the store's record.

use tokio_postgres::GenericClient;

use super::*;
use crate::store::catalog;

/// The store's record of its group roles, in the order of [`RoleKind`]; empty when the table
/// is missing (a store not migrated to the version that has it) or empty.
pub async fn recorded(
    client: &impl GenericClient,
) -> Result<Vec<(RoleKind, String)>, tokio_postgres::Error> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("public.{RECORD_TABLE}")],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!("SELECT kind, role_name FROM public.{RECORD_TABLE}"),
            &[],
        )
        .await?;
    let mut recorded: Vec<(RoleKind, String)> = rows
        .iter()
        .filter_map(|r| {
            let kind: String = r.get(0);
            kind.parse().ok().map(|k| (k, r.get(1)))
        })
        .collect();
    recorded.sort();
    Ok(recorded)
}

/// The privileges on the store's database, schema `public`, tables (with their columns') and
/// functions, and on dblink's functions; one row per privilege (or one with NULLs for an
/// object nobody holds anything on).
const OBJECTS_QUERY: &str = "
WITH dblink AS (
    SELECT dep.objid FROM pg_catalog.pg_depend dep JOIN pg_catalog.pg_extension e ON e.oid = dep.refobjid
     WHERE dep.classid = 'pg_catalog.pg_proc'::regclass AND dep.deptype = 'e' AND e.extname = 'dblink'
), objects AS (
    SELECT 1 AS sort, 'database' AS kind, d.datname::text AS name,
           'DATABASE ' || pg_catalog.quote_ident(d.datname) AS target, d.datdba AS owner,
           COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba)) AS acl, false AS dblink, NULL::oid AS relid
      FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()
    UNION ALL
    SELECT 2, 'schema', n.nspname::text, 'SCHEMA public', n.nspowner,
           COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner)), false, NULL
      FROM pg_catalog.pg_namespace n WHERE n.nspname = 'public'
    UNION ALL
    SELECT 3, 'table', c.relname::text, 'TABLE public.' || pg_catalog.quote_ident(c.relname), c.relowner,
           COALESCE(c.relacl, pg_catalog.acldefault('r', c.relowner)), false, c.oid
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname = ANY($1)
    UNION ALL
    SELECT 4, 'function', p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')',
           'FUNCTION ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname)
               || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')',
           p.proowner, COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner)),
           p.oid IN (SELECT objid FROM dblink), NULL
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE (p.pronamespace = 'public'::regnamespace AND p.proname = ANY($2))
        OR p.oid IN (SELECT objid FROM dblink)
)
SELECT o.kind, o.name, o.target, pg_catalog.pg_get_userbyid(o.owner), o.dblink,
       CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
       a.privilege,
       pg_catalog.pg_has_role(o.owner, 'USAGE'),
       pg_catalog.pg_get_userbyid(a.grantor), a.is_grantable
  FROM objects o
  LEFT JOIN LATERAL (
      SELECT x.grantee, x.grantor, x.privilege_type AS privilege, x.is_grantable
        FROM pg_catalog.aclexplode(o.acl) x
      UNION ALL
      SELECT x.grantee, x.grantor, x.privilege_type || ' (' || pg_catalog.quote_ident(att.attname) || ')', x.is_grantable
        FROM pg_catalog.pg_attribute att, pg_catalog.aclexplode(att.attacl) x
       WHERE att.attrelid = o.relid AND att.attnum > 0 AND NOT att.attisdropped AND att.attacl IS NOT NULL
  ) a ON true
 ORDER BY o.sort, o.name, 6, 7
";

/// Facts about the roles named; `$2` are the owners of the store's objects.
const ROLES_QUERY: &str = "
SELECT r.rolname::text, r.rolcanlogin, r.rolsuper, r.rolreplication, r.rolinherit,
       pg_catalog.pg_has_role(r.oid, 'MEMBER WITH ADMIN OPTION'),
       ARRAY(SELECT w.rolname::text FROM pg_catalog.pg_roles w
              WHERE (w.rolname = ANY($2) OR w.rolname IN ('pg_write_all_data', 'pg_maintain'))
                AND pg_catalog.pg_has_role(r.oid, w.oid, 'MEMBER')
              ORDER BY 1)
  FROM pg_catalog.pg_roles r WHERE r.rolname = ANY($1)
";

/// The running role.
const RUNNER_QUERY: &str = "
SELECT current_user::text, r.rolsuper, r.rolcreaterole, r.rolreplication,
       current_setting('server_version_num')::int
  FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
";

/// Members of the groups named, one row per (group, member). From 16 a membership can pass
/// neither rights nor SET ROLE: the grant CREATE ROLE gives its creator (ADMIN only) is such a
/// one, and is not listed; and each grantor's grant is its own row.
fn members_query(server_version: i32) -> &'static str {
    if server_version >= 160000 {
        "SELECT g.rolname::text, m.rolname::text, m.rolcanlogin, bool_or(am.inherit_option),
                array_agg(DISTINCT pg_catalog.pg_get_userbyid(am.grantor)::text)
           FROM pg_catalog.pg_auth_members am
           JOIN pg_catalog.pg_roles g ON g.oid = am.roleid JOIN pg_catalog.pg_roles m ON m.oid = am.member
          WHERE g.rolname = ANY($1) AND (am.inherit_option OR am.set_option)
          GROUP BY 1, 2, 3 ORDER BY 1, 2"
    } else {
        "SELECT g.rolname::text, m.rolname::text, m.rolcanlogin, m.rolinherit,
                array_agg(DISTINCT pg_catalog.pg_get_userbyid(am.grantor)::text)
           FROM pg_catalog.pg_auth_members am
           JOIN pg_catalog.pg_roles g ON g.oid = am.roleid JOIN pg_catalog.pg_roles m ON m.oid = am.member
          WHERE g.rolname = ANY($1)
          GROUP BY 1, 2, 3, 4 ORDER BY 1, 2"
    }
}

/// Reads the access state of the store `client` is connected to: `groups` are the group
/// roles to look at by kind (`None`: the ones the store records), `others` the other roles
/// named.
pub async fn read(
    client: &impl GenericClient,
    layout: Layout,
    database: &str,
    groups: Option<&[(RoleKind, String)]>,
    others: &[String],
) -> Result<AccessState, tokio_postgres::Error> {
    let recorded = recorded(client).await?;
    let groups = groups.unwrap_or(&recorded);
    let row = client.query_one(RUNNER_QUERY, &[]).await?;
    let mut runner = Runner {
        name: row.get(0),
        superuser: row.get(1),
        createrole: row.get(2),
        replication: row.get(3),
        server_version: row.get(4),
        acts_as_owner: true,
    };
    let tables = catalog::latest_names(layout, "table");
    let functions = catalog::latest_names(layout, "function");
    let mut objects: Vec<Object> = Vec::new();
    for row in client.query(OBJECTS_QUERY, &[&tables, &functions]).await? {
        let name: String = row.get(1);
        let dblink: bool = row.get(4);
        let runner_owns: bool = row.get(7);
        let kind = match row.get::<_, &str>(0) {
            "database" => ObjectKind::Database,
            "schema" => ObjectKind::Schema,
            "table" => ObjectKind::Table,
            _ => ObjectKind::Function,
        };
        // The schema is the server's (before 15 its owner is the bootstrap superuser): its
        // hardening is done where the runner may, and not required of it.
        if !dblink && kind != ObjectKind::Schema && !runner_owns {
            runner.acts_as_owner = false;
        }
        if objects.last().map(|o| (o.kind, &o.name)) != Some((kind, &name)) {
            objects.push(Object {
                kind,
                name: name.clone(),
                target: row.get(2),
                owner: row.get(3),
                dblink,
                runner_owns,
                held: Vec::new(),
            });
        }
        if let (Some(grantee), Some(privilege), Some(object)) = (
            row.get::<_, Option<String>>(5),
            row.get::<_, Option<String>>(6),
            objects.last_mut(),
        ) {
            object.held.push(Held {
                grantee,
                privilege,
                grantor: row.get::<_, Option<String>>(8).unwrap_or_default(),
                grantable: row.get::<_, Option<bool>>(9).unwrap_or(false),
            });
        }
    }
    runner.acts_as_owner |= runner.superuser;
    let owners: Vec<String> = objects
        .iter()
        .filter(|o| !o.dblink && o.kind != ObjectKind::Schema)
        .map(|o| o.owner.clone())
        .collect();

    let group_names: Vec<String> = groups.iter().map(|(_, n)| n.clone()).collect();
    let mut wanted: Vec<String> = group_names.clone();
    wanted.extend(others.iter().cloned());
    let facts: Vec<RoleFacts> = client
        .query(ROLES_QUERY, &[&wanted, &owners])
        .await?
        .iter()
        .map(|r| RoleFacts {
            name: r.get(0),
            exists: true,
            can_login: r.get(1),
            superuser: r.get(2),
            replication: r.get(3),
            inherit: r.get(4),
            // Before 16, CREATEROLE may grant any role but a superuser.
            administered: r.get::<_, bool>(5)
                || (runner.server_version < 160000 && runner.createrole && !r.get::<_, bool>(2)),
            wider: r.get(6),
        })
        .collect();
    let facts_of = |name: &str| {
        facts
            .iter()
            .find(|f| f.name == name)
            .cloned()
            .unwrap_or_else(|| RoleFacts {
                name: name.to_string(),
                ..RoleFacts::default()
            })
    };
    let members = client
        .query(members_query(runner.server_version), &[&group_names])
        .await?
        .iter()
        .map(|r| Member {
            group: r.get(0),
            member: r.get(1),
            can_login: r.get(2),
            inherits: r.get(3),
            grantors: r.get(4),
        })
        .collect();
    Ok(AccessState {
        layout,
        database: database.to_string(),
        objects,
        groups: groups
            .iter()
            .map(|(kind, name)| (*kind, facts_of(name)))
            .collect(),
        members,
        others: others.iter().map(|n| facts_of(n)).collect(),
        recorded,
        runner,
    })
}

/// The sessions on the store's database whose role may no longer connect (after the
/// statements of a run, inside its transaction), for a warning.
pub async fn sessions_without_connect(
    client: &impl GenericClient,
) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT DISTINCT a.usename::text FROM pg_catalog.pg_stat_activity a
              WHERE a.datname = pg_catalog.current_database() AND a.pid <> pg_catalog.pg_backend_pid()
                AND a.usesysid IS NOT NULL
                AND NOT pg_catalog.has_database_privilege(a.usesysid, a.datid, 'CONNECT')
              ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
