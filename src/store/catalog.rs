//! The database objects a layout consists of, read from the catalogs in a form that can be
//! compared: one line of definition per table, constraint, index, function, trigger and
//! extension.
//!
//! The expected objects are not kept by hand: `migrations/catalog/<layout>/V<n>.json` is the
//! catalog after applying a layout's migrations up to V<n>, written and checked by
//! `tests/it/catalog.rs` against a real server, and embedded in the binary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use crate::store::layout::{Layout, HISTORY_TABLE};

/// One object, as the catalogs describe it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CatalogObject {
    /// `table`, `constraint`, `index`, `function`, `trigger` or `extension`.
    pub kind: String,
    /// The name; functions carry their argument types, constraints and triggers their table.
    pub name: String,
    /// The definition as PostgreSQL prints it (functions: arguments with names and defaults,
    /// result, language, and a hash of the body with comments and insignificant whitespace
    /// removed).
    pub definition: String,
}

impl CatalogObject {
    /// `kind name`, the identity compared across databases.
    pub fn key(&self) -> (String, String) {
        (self.kind.clone(), self.name.clone())
    }
}

/// Objects in the public schema, minus the history table and what extensions own. Every
/// property that changes how the store behaves is part of a definition: a table's persistence
/// and row-level security, a function's security, volatility, strictness, parallel safety,
/// leakproofness and SET options, a trigger's enabled state; rules and policies are objects of
/// their own. A property at PostgreSQL's default adds nothing, so the definitions of the objects
/// the migrations create read the same as before these were added. Names are built from the
/// catalogs, not from `regprocedure` (which depends on the session's search_path), and NOT NULL
/// constraints (rows of pg_constraint from PostgreSQL 18 on) are left to the table's definition.
const CATALOG_QUERY: &str = "
WITH ext_members AS (
    SELECT objid FROM pg_catalog.pg_depend WHERE deptype = 'e'
), public_ns AS (
    SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'public'
)
SELECT 'table', c.relname::text,
       string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
                  || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                  || COALESCE(' DEFAULT ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), ''),
                  ', ' ORDER BY a.attnum)
       || CASE c.relpersistence WHEN 'u' THEN ' UNLOGGED' ELSE '' END
       || CASE WHEN c.relrowsecurity THEN ' ROW LEVEL SECURITY' ELSE '' END
       || CASE WHEN c.relforcerowsecurity THEN ' FORCE ROW LEVEL SECURITY' ELSE '' END,
       NULL::text
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace IN (SELECT oid FROM public_ns) AND c.relkind IN ('r', 'p')
   AND c.relname <> $1 AND c.oid NOT IN (SELECT objid FROM ext_members)
 GROUP BY c.relname, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity
UNION ALL
SELECT 'constraint', r.relname || '.' || con.conname, pg_catalog.pg_get_constraintdef(con.oid), NULL
  FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class r ON r.oid = con.conrelid
 WHERE con.connamespace IN (SELECT oid FROM public_ns) AND r.relname <> $1
   AND con.contype <> 'n' AND r.oid NOT IN (SELECT objid FROM ext_members)
UNION ALL
SELECT 'index', ic.relname::text, pg_catalog.pg_get_indexdef(i.indexrelid), NULL
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_class r ON r.oid = i.indrelid
 WHERE ic.relnamespace IN (SELECT oid FROM public_ns) AND r.relname <> $1
   AND r.oid NOT IN (SELECT objid FROM ext_members)
UNION ALL
SELECT 'function',
       p.proname || '(' || COALESCE((SELECT string_agg(pg_catalog.format_type(t.typ, NULL), ',' ORDER BY t.n)
                                       FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS t(typ, n)), '') || ')',
       '(' || pg_catalog.pg_get_function_arguments(p.oid) || ') RETURNS '
           || pg_catalog.pg_get_function_result(p.oid) || ' LANGUAGE ' || l.lanname
           || CASE WHEN p.prosecdef THEN ' SECURITY DEFINER' ELSE '' END
           || CASE p.provolatile WHEN 'i' THEN ' IMMUTABLE' WHEN 's' THEN ' STABLE' ELSE '' END
           || CASE WHEN p.proisstrict THEN ' STRICT' ELSE '' END
           || CASE WHEN p.proleakproof THEN ' LEAKPROOF' ELSE '' END
           || CASE p.proparallel WHEN 's' THEN ' PARALLEL SAFE' WHEN 'r' THEN ' PARALLEL RESTRICTED' ELSE '' END
           || COALESCE(' SET ' || array_to_string(p.proconfig, ', '), ''),
       p.prosrc
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace IN (SELECT oid FROM public_ns) AND p.oid NOT IN (SELECT objid FROM ext_members)
UNION ALL
SELECT 'trigger', r.relname || '.' || t.tgname,
       pg_catalog.pg_get_triggerdef(t.oid)
       || CASE t.tgenabled WHEN 'O' THEN '' WHEN 'D' THEN ' [DISABLED]'
                           WHEN 'R' THEN ' [ENABLED REPLICA]' WHEN 'A' THEN ' [ENABLED ALWAYS]' END,
       NULL
  FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class r ON r.oid = t.tgrelid
 WHERE NOT t.tgisinternal AND r.relnamespace IN (SELECT oid FROM public_ns)
UNION ALL
SELECT 'rule', r.relname || '.' || ru.rulename, pg_catalog.pg_get_ruledef(ru.oid), NULL
  FROM pg_catalog.pg_rewrite ru JOIN pg_catalog.pg_class r ON r.oid = ru.ev_class
 WHERE ru.rulename <> '_RETURN' AND r.relnamespace IN (SELECT oid FROM public_ns)
UNION ALL
SELECT 'policy', r.relname || '.' || pol.polname,
       'FOR ' || pol.polcmd::text || CASE WHEN pol.polpermissive THEN '' ELSE ' RESTRICTIVE' END
           || COALESCE(' USING (' || pg_catalog.pg_get_expr(pol.polqual, pol.polrelid) || ')', '')
           || COALESCE(' WITH CHECK (' || pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid) || ')', ''),
       NULL
  FROM pg_catalog.pg_policy pol JOIN pg_catalog.pg_class r ON r.oid = pol.polrelid
 WHERE r.relnamespace IN (SELECT oid FROM public_ns)
UNION ALL
SELECT 'extension', e.extname::text, 'extension ' || e.extname, NULL
  FROM pg_catalog.pg_extension e WHERE e.extname <> 'plpgsql'
";

/// Who owns the layout's tables and functions, and what is granted on them: reported, not
/// compared (deployments grant differently).
const ACCESS_QUERY: &str = "
SELECT 'table', c.relname::text, pg_catalog.pg_get_userbyid(c.relowner), COALESCE(c.relacl::text, '(default)')
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname = ANY($1)
UNION ALL
SELECT 'function', p.proname::text, pg_catalog.pg_get_userbyid(p.proowner), COALESCE(p.proacl::text, '(default)')
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY($2)
 ORDER BY 1, 2
";

/// Owner and grants of one of the layout's tables or functions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    pub kind: String,
    pub name: String,
    pub owner: String,
    /// PostgreSQL's ACL text, or `(default)`.
    pub privileges: String,
}

/// Owner and grants of the tables and functions named.
pub async fn access(
    client: &Client,
    tables: &[String],
    functions: &[String],
) -> Result<Vec<Access>, tokio_postgres::Error> {
    let rows = client.query(ACCESS_QUERY, &[&tables, &functions]).await?;
    Ok(rows
        .iter()
        .map(|r| Access {
            kind: r.get(0),
            name: r.get(1),
            owner: r.get(2),
            privileges: r.get(3),
        })
        .collect())
}

/// Reads the objects of the database `client` is connected to, sorted by kind and name.
pub async fn read(client: &Client) -> Result<Vec<CatalogObject>, tokio_postgres::Error> {
    let rows = client.query(CATALOG_QUERY, &[&HISTORY_TABLE]).await?;
    let mut objects: Vec<CatalogObject> = rows
        .iter()
        .map(|row| {
            let kind: String = row.get(0);
            let mut definition: String = row.get(2);
            if let Some(body) = row.get::<_, Option<String>>(3) {
                definition.push_str(&format!(" BODY {}", body_hash(&body)));
            }
            CatalogObject {
                kind,
                name: row.get(1),
                definition,
            }
        })
        .collect();
    objects.sort();
    Ok(objects)
}

/// The catalog a layout has after its migrations up to `version` (empty for version 0).
pub fn expected(layout: Layout, version: i32) -> Vec<CatalogObject> {
    if version <= 0 {
        return Vec::new();
    }
    let text = layout
        .catalog_snapshot(version)
        .unwrap_or_else(|| panic!("no catalog snapshot for {layout} V{version}"));
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("catalog snapshot {layout} V{version} is invalid: {e}"))
}

/// Objects by identity, for comparisons.
pub fn by_key(objects: &[CatalogObject]) -> BTreeMap<(String, String), &CatalogObject> {
    objects.iter().map(|o| (o.key(), o)).collect()
}

/// `sha256:` and 16 hex digits of the body with comments removed and whitespace reduced to
/// what separates two words: reformatting a function is not drift, changing it is.
pub fn body_hash(body: &str) -> String {
    let digest = Sha256::digest(normalize_sql(body).as_bytes());
    let hex = hex::encode(&digest[..8]);
    format!("sha256:{hex}")
}

/// Removes `--` and `/* */` comments and insignificant whitespace, keeping string literals,
/// quoted identifiers and dollar-quoted text exactly.
pub fn normalize_sql(sql: &str) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut pending_space = false;
    let mut i = 0;
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let push = |out: &mut String, pending_space: &mut bool, text: &str| {
        if *pending_space {
            if let (Some(prev), Some(next)) = (out.chars().last(), text.chars().next()) {
                if is_word(prev) && is_word(next) {
                    out.push(' ');
                }
            }
            *pending_space = false;
        }
        out.push_str(text);
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            pending_space = true;
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            pending_space = true;
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            pending_space = true;
        } else if c == '\'' || c == '"' {
            // A literal or quoted identifier; a doubled quote stays inside. E'' strings
            // also escape with a backslash.
            let escaped_by_backslash = c == '\'' && i > 0 && matches!(chars[i - 1], 'E' | 'e');
            let start = i;
            i += 1;
            while i < chars.len() {
                if escaped_by_backslash && chars[i] == '\\' {
                    i += 2;
                    continue;
                }
                if chars[i] == c {
                    if chars.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            let literal: String = chars[start..i.min(chars.len())].iter().collect();
            push(&mut out, &mut pending_space, &literal);
        } else if c == '$' && dollar_tag(&chars, i).is_some() {
            let tag = dollar_tag(&chars, i).expect("checked");
            let tag_len = tag.chars().count();
            let body_start = i + tag_len;
            let mut end = chars.len();
            let mut j = body_start;
            while j + tag_len <= chars.len() {
                if chars[j..j + tag_len].iter().copied().eq(tag.chars()) {
                    end = j + tag_len;
                    break;
                }
                j += 1;
            }
            let literal: String = chars[i..end].iter().collect();
            push(&mut out, &mut pending_space, &literal);
            i = end;
        } else {
            let mut buf = [0u8; 4];
            push(&mut out, &mut pending_space, c.encode_utf8(&mut buf));
            i += 1;
        }
    }
    out
}

/// `$tag$` starting at `i` (not a `$1` parameter), if any.
fn dollar_tag(chars: &[char], i: usize) -> Option<String> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i + 1;
    while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
        if j == i + 1 && chars[j].is_ascii_digit() {
            return None;
        }
        j += 1;
    }
    (j < chars.len() && chars[j] == '$').then(|| chars[i..=j].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_and_comments_do_not_change_the_hash() {
        let a = "BEGIN\n  -- say it\n  RAISE EXCEPTION 'x: %', TG_OP; /* why */\nEND;";
        let b = "BEGIN RAISE   EXCEPTION 'x: %',TG_OP;\n\nEND ;";
        assert_eq!(body_hash(a), body_hash(b));
    }

    #[test]
    fn literals_keep_their_dashes_and_spacing() {
        let a = "RAISE EXCEPTION 'at ------> %  x', idx;";
        assert_eq!(normalize_sql(a), "RAISE EXCEPTION'at ------> %  x',idx;");
        assert_ne!(
            body_hash(a),
            body_hash("RAISE EXCEPTION 'at ----> % x', idx;")
        );
    }

    #[test]
    fn parameters_are_not_dollar_quotes_and_escaped_strings_end_right() {
        assert_eq!(
            normalize_sql("regexp_matches(v, '\\$1\\[([0-9]+)\\]', 'g')"),
            "regexp_matches(v,'\\$1\\[([0-9]+)\\]','g')"
        );
        assert_eq!(
            normalize_sql("replace(x, E'\\\\', E'\\\\\\\\') -- c"),
            "replace(x,E'\\\\',E'\\\\\\\\')"
        );
        assert_eq!(
            normalize_sql("EXECUTE 'INSERT ' || v USING $1, $2"),
            "EXECUTE'INSERT '||v USING $1,$2"
        );
        assert_eq!(
            normalize_sql("x := $q$ a  -- b $q$;"),
            "x:=$q$ a  -- b $q$;"
        );
    }

    #[test]
    fn a_changed_body_changes_the_hash() {
        assert_ne!(body_hash("RETURN new;"), body_hash("RETURN old;"));
    }
}
