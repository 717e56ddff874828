//! The password file (`PGPASSFILE`, else `~/.pgpass`) with libpq's matching rules.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use tracing::warn;

/// The password file to read: `PGPASSFILE`, else `~/.pgpass`.
pub fn default_path(env_passfile: Option<String>) -> Option<PathBuf> {
    env_passfile
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pgpass")))
}

/// The password of the first line matching host, port, database and user; `*` matches
/// anything, `\:` and `\\` stand for `:` and `\`. A Unix-socket directory also matches
/// `localhost`, as in libpq. A file readable by group or others is ignored with a warning.
pub fn lookup(
    path: &Path,
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Option<SecretString> {
    let text = read_password_file(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            warn!(
                file = %path.display(),
                "password file has group or world access ({:o}); ignoring it: permissions should be u=rw (0600) or less",
                mode & 0o777
            );
            return None;
        }
    }
    let port = port.to_string();
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let fields = split_fields(line);
            (fields.len() == 5).then_some(fields)
        })
        .find(|f| {
            let host_matches =
                f[0] == "*" || f[0] == host || (host.starts_with('/') && f[0] == "localhost");
            host_matches
                && (f[1] == "*" || f[1] == port)
                && (f[2] == "*" || f[2] == database)
                && (f[3] == "*" || f[3] == user)
        })
        .map(|f| SecretString::from(f[4].clone()))
}

/// The largest password file read; anything longer is not a password file.
const MAX_PASSWORD_FILE_BYTES: u64 = 1024 * 1024;

/// Reads the password file if it is a regular file of at most [`MAX_PASSWORD_FILE_BYTES`], as
/// libpq (which ignores anything else): a FIFO would block the run, `/dev/zero` fill memory.
fn read_password_file(path: &Path) -> Option<String> {
    use std::io::Read;
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() {
        warn!(file = %path.display(), "the password file is not a regular file; ignoring it");
        return None;
    }
    if metadata.len() > MAX_PASSWORD_FILE_BYTES {
        warn!(file = %path.display(), bytes = metadata.len(), "the password file is larger than {MAX_PASSWORD_FILE_BYTES} bytes; ignoring it");
        return None;
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_PASSWORD_FILE_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Splits on unescaped `:`, undoing `\:` and `\\`. The last field (the password) takes the
/// rest of the line.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("non-empty").push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            _ => fields.last_mut().expect("non-empty").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn write(contents: &str, mode: u32) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), contents).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        file
    }

    fn found(
        file: &tempfile::NamedTempFile,
        host: &str,
        port: u16,
        db: &str,
        user: &str,
    ) -> Option<String> {
        lookup(file.path(), host, port, db, user).map(|s| s.expose_secret().to_string())
    }

    #[test]
    fn first_matching_line_wins_with_wildcards() {
        let file = write("# comment\ndb.internal:5432:orders:admin:exact\n*:*:*:admin:any-db\n*:*:*:*:fallback\n", 0o600);
        assert_eq!(
            found(&file, "db.internal", 5432, "orders", "admin").as_deref(),
            Some("exact")
        );
        assert_eq!(
            found(&file, "db.internal", 5433, "orders", "admin").as_deref(),
            Some("any-db")
        );
        assert_eq!(
            found(&file, "other", 1, "x", "bob").as_deref(),
            Some("fallback")
        );
    }

    #[test]
    fn escaped_colons_and_backslashes() {
        let file = write(
            "h\\:x:5432:d:u:pa\\:ss\\\\word\nh:5432:d:u:p:with:colons\n",
            0o600,
        );
        assert_eq!(
            found(&file, "h:x", 5432, "d", "u").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            found(&file, "h", 5432, "d", "u").as_deref(),
            Some("p:with:colons")
        );
    }

    #[test]
    fn socket_directory_matches_localhost() {
        let file = write("localhost:5432:*:u:sock\n", 0o600);
        assert_eq!(
            found(&file, "/var/run/postgresql", 5432, "d", "u").as_deref(),
            Some("sock")
        );
        assert_eq!(found(&file, "db.internal", 5432, "d", "u"), None);
    }

    #[test]
    #[cfg(unix)]
    fn group_or_world_readable_file_is_ignored() {
        let file = write("*:*:*:*:secret\n", 0o644);
        assert_eq!(found(&file, "h", 1, "d", "u"), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        #[test]
        fn splitting_any_line_never_panics(line in any::<String>()) {
            let _ = split_fields(&line);
        }

        #[test]
        fn escaped_fields_come_back_as_written(fields in proptest::collection::vec("[a-z:\\\\*]{0,8}", 5)) {
            let escape = |f: &String| f.replace('\\', "\\\\").replace(':', "\\:");
            let line = fields.iter().map(escape).collect::<Vec<_>>().join(":");
            prop_assert_eq!(split_fields(&line), fields);
        }
    }

    #[test]
    fn a_password_file_that_is_not_a_regular_file_is_ignored() {
        assert!(read_password_file(Path::new("/dev/zero")).is_none());
        let dir = tempfile::tempdir().unwrap();
        assert!(read_password_file(dir.path()).is_none());
    }
}
