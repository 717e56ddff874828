//! Database names the tool will create: valid, unquoted-style PostgreSQL identifiers.

use std::fmt;

/// PostgreSQL's NAMEDATALEN - 1: longer names are silently truncated by the server, so we
/// refuse them instead.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// A database name checked against `[A-Za-z_][A-Za-z0-9_$]*` and at most 63 bytes.
/// Case is kept: the name is always quoted when sent to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier(String);

impl Identifier {
    /// Checks `name`; the error says what is wrong and what is allowed.
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.is_empty() {
            return Err("is empty".into());
        }
        if name.len() > MAX_IDENTIFIER_BYTES {
            return Err(format!(
                "is {} bytes long; PostgreSQL identifiers are at most {MAX_IDENTIFIER_BYTES} bytes",
                name.len()
            ));
        }
        let mut chars = name.chars();
        let first = chars.next().expect("checked non-empty");
        if !(first.is_ascii_alphabetic() || first == '_') {
            return Err(format!(
                "starts with {first:?}; it must start with a letter (a-z, A-Z) or an underscore"
            ));
        }
        if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$')) {
            return Err(format!(
                "contains {bad:?}; only letters, digits, underscores and dollar signs are allowed"
            ));
        }
        Ok(Identifier(name.to_string()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_underscore_dollar_and_keeps_case() {
        assert_eq!(
            Identifier::parse("Orders_2$x").unwrap().as_str(),
            "Orders_2$x"
        );
        assert!(Identifier::parse("_a").is_ok());
        assert!(Identifier::parse(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn rejects_what_postgres_would_need_quoted_or_truncate() {
        assert!(Identifier::parse("").is_err());
        assert!(Identifier::parse("1abc").is_err());
        assert!(Identifier::parse("$abc").is_err());
        assert!(Identifier::parse("a-b").is_err());
        assert!(Identifier::parse("a b").is_err());
        assert!(Identifier::parse("a\"b").is_err());
        assert!(Identifier::parse("é").is_err());
        assert!(Identifier::parse(&"a".repeat(64))
            .unwrap_err()
            .contains("64 bytes"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        #[test]
        fn any_name_is_accepted_exactly_when_it_is_a_plain_identifier(name in any::<String>()) {
            let plain = !name.is_empty()
                && name.len() <= MAX_IDENTIFIER_BYTES
                && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
            prop_assert_eq!(Identifier::parse(&name).is_ok(), plain);
        }

        #[test]
        fn generated_identifiers_are_accepted(name in "[A-Za-z_][A-Za-z0-9_$]{0,62}") {
            prop_assert!(Identifier::parse(&name).is_ok());
        }
    }
}
