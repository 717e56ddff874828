//! Connection strings: `postgresql://` URIs and libpq `key=value` strings.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;

use crate::pg::PgFailure;

/// What a connection string says.
#[derive(Default, Debug)]
pub(super) struct UrlParts {
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) user: Option<String>,
    pub(super) password: Option<String>,
    pub(super) database: Option<String>,
    pub(super) sslmode: Option<String>,
    pub(super) sslrootcert: Option<String>,
    pub(super) application_name: Option<String>,
    pub(super) connect_timeout: Option<Duration>,
}

/// Parses a `postgresql://` URI or a `key=value` string with tokio-postgres's parser. The
/// parser knows neither verify-ca/verify-full nor sslrootcert, so those are taken out first.
pub(super) fn parse_url(text: &str) -> Result<UrlParts, String> {
    let (rest, sslmode, sslrootcert) = take_tls_options(text);
    let config = tokio_postgres::Config::from_str(&rest).map_err(|e| {
        let failure = PgFailure::from(&e);
        format!("{failure} (expected postgresql://user@host:port/database?sslmode=... or \"host=... port=... dbname=...\")")
    })?;
    if config.get_hosts().len() > 1 {
        return Err("it names several hosts; init-slate-db connects to one".into());
    }
    let host = config.get_hosts().first().map(|h| match h {
        Host::Tcp(name) => name.clone(),
        #[cfg(unix)]
        Host::Unix(path) => path.to_string_lossy().into_owned(),
    });
    Ok(UrlParts {
        host,
        port: config.get_ports().first().copied(),
        user: config.get_user().map(String::from),
        password: config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        database: config.get_dbname().map(String::from),
        sslmode,
        sslrootcert,
        application_name: config.get_application_name().map(String::from),
        connect_timeout: config.get_connect_timeout().copied(),
    })
}

/// Whether a connection string carries a password (for the process-list warning).
pub fn names_a_password(text: &str) -> bool {
    parse_url(text).is_ok_and(|parts| parts.password.is_some())
}

/// Removes `sslmode` and `sslrootcert` from a URI's query or a key=value string, returning
/// the rest and their values.
fn take_tls_options(text: &str) -> (String, Option<String>, Option<String>) {
    let (mut sslmode, mut sslrootcert) = (None, None);
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let Some((base, query)) = text.split_once('?') else {
            return (text.to_string(), None, None);
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("sslmode", value)) => sslmode = Some(percent_decode(value)),
                Some(("sslrootcert", value)) => sslrootcert = Some(percent_decode(value)),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return (rest, sslmode, sslrootcert);
    }
    let mut kept = Vec::new();
    for (key, value, raw) in key_value_pairs(text) {
        match key.as_str() {
            "sslmode" => sslmode = Some(value),
            "sslrootcert" => sslrootcert = Some(value),
            _ => kept.push(raw),
        }
    }
    (kept.join(" "), sslmode, sslrootcert)
}

/// `key = value` pairs of a libpq conninfo string: (key, unquoted value, the pair's text).
fn key_value_pairs(text: &str) -> Vec<(String, String, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() || chars[i] != '=' {
            // Not a pair: keep it for the driver to complain about.
            if !key.is_empty() {
                pairs.push((key.clone(), String::new(), key));
            }
            continue;
        }
        i += 1;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
        }
        let raw: String = chars[start..i.min(chars.len())].iter().collect();
        pairs.push((key, value, raw));
    }
    pairs
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays as it is, and bytes that
/// are not UTF-8 become U+FFFD.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Inputs tried per property: the closing note of issue 10 reports these counts.
    const CASES: u32 = 20_000;

    /// Pieces that connection strings are made of, multibyte characters and escapes included.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("postgresql://".to_string()),
            Just("postgres://".to_string()),
            Just("?".to_string()),
            Just("&".to_string()),
            Just("=".to_string()),
            Just("%".to_string()),
            Just("%2".to_string()),
            Just("%€".to_string()),
            Just("'".to_string()),
            Just("\\".to_string()),
            Just(" ".to_string()),
            Just("sslmode=".to_string()),
            Just("sslrootcert=".to_string()),
            Just("host=".to_string()),
            Just("@".to_string()),
            Just(":".to_string()),
            Just("/".to_string()),
            "[a-z0-9]{0,6}",
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

        #[test]
        fn parsing_any_connection_string_never_panics(text in any::<String>()) {
            let _ = parse_url(&text);
            let _ = names_a_password(&text);
        }

        #[test]
        fn parsing_connection_string_pieces_never_panics(pieces in proptest::collection::vec(piece(), 0..12)) {
            let text = pieces.concat();
            let _ = parse_url(&text);
        }

        #[test]
        fn percent_decoding_keeps_text_without_escapes(text in "[^%]*") {
            prop_assert_eq!(percent_decode(&text), text);
        }
    }

    #[test]
    fn a_percent_before_a_multibyte_character_is_kept() {
        assert_eq!(percent_decode("%€x"), "%€x");
        assert_eq!(percent_decode("a%20b"), "a b");
        assert!(parse_url("postgresql://h/db?sslmode=%€x").is_ok());
    }
}
