//! What PostgreSQL said, in one line: SQLSTATE, message, detail and hint, or the I/O cause.

use std::fmt;

use tokio_postgres::error::SqlState;

/// A PostgreSQL or client-side failure rendered for people, keeping the SQLSTATE for decisions.
#[derive(Debug, Clone)]
pub struct PgFailure {
    /// The SQLSTATE when the server reported the error.
    pub code: Option<SqlState>,
    /// One line: the server's message (with detail and hint), or the client error and its causes.
    pub message: String,
}

impl PgFailure {
    /// True when the server reported `code`.
    pub fn is(&self, code: &SqlState) -> bool {
        self.code.as_ref() == Some(code)
    }

    /// The same failure with every occurrence of `secret` masked (a message may quote a
    /// connection string).
    pub fn redacted(self, secret: &str) -> PgFailure {
        if secret.is_empty() {
            return self;
        }
        PgFailure {
            message: self.message.replace(secret, "(password)"),
            ..self
        }
    }
}

impl From<&tokio_postgres::Error> for PgFailure {
    fn from(error: &tokio_postgres::Error) -> Self {
        if let Some(db) = error.as_db_error() {
            let mut message = db.message().to_string();
            if let Some(detail) = db.detail() {
                message.push_str(&format!(" (detail: {detail})"));
            }
            if let Some(hint) = db.hint() {
                message.push_str(&format!(" (hint: {hint})"));
            }
            message.push_str(&format!(" [SQLSTATE {}]", db.code().code()));
            return PgFailure {
                code: Some(db.code().clone()),
                message: one_line(&message),
            };
        }
        PgFailure {
            code: None,
            message: one_line(&chain(error)),
        }
    }
}

impl From<tokio_postgres::Error> for PgFailure {
    fn from(error: tokio_postgres::Error) -> Self {
        PgFailure::from(&error)
    }
}

impl fmt::Display for PgFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Finds the PostgreSQL error inside any error chain (refinery wraps it twice).
pub fn failure_in_chain(error: &(dyn std::error::Error + 'static)) -> PgFailure {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(pg) = e.downcast_ref::<tokio_postgres::Error>() {
            return PgFailure::from(pg);
        }
        current = e.source();
    }
    PgFailure {
        code: None,
        message: one_line(&chain(error)),
    }
}

/// `error: cause: cause`, skipping causes that repeat the text before them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Server messages can span lines (PL/pgSQL context); errors are one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` as an SQL string literal, for statements that take no parameters (COMMENT, CREATE
/// SUBSCRIPTION, GRANT's record). A text with a backslash is written `E'...'` with the
/// backslashes doubled, as PostgreSQL's quote_literal does, so that it reads the same whatever
/// the session's `standard_conforming_strings`.
pub fn quote_literal(text: &str) -> String {
    let quoted = text.replace('\'', "''");
    if text.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// Quotes `name` as an SQL identifier (doubling any double quote), for DDL that cannot take
/// parameters such as CREATE DATABASE.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod quoting {
    use super::quote_literal;

    #[test]
    fn a_literal_with_a_backslash_reads_the_same_under_either_string_setting() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\b'c"), r"E'a\\b''c'");
    }
}
