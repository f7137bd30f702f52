//! What makes a password too easy to guess, beyond its length (which the callers
//! check against their own bounds): nothing but whitespace, one of the passwords
//! people pick most, or the account's own email address (its local part) inside it.
//!
//! The list of common passwords (`common-passwords.txt`, one a line, lower case) is
//! the 8,450 passwords of 8 or more characters among the 20,000 commonest of the
//! public list by Royce Williams that Django's `CommonPasswordValidator` ships
//! (shorter ones are refused by length anyway). It is compiled in and read once
//! into a set: about 85 kB, checked in well under a microsecond.

use std::collections::HashSet;
use std::sync::OnceLock;

const COMMON: &str = include_str!("common-passwords.txt");

/// Shortest local part of an email looked for inside a password: shorter ones
/// ("al", "jo") occur by chance in good passwords.
const LOCAL_PART_CHARS_MIN: usize = 3;

/// Why a password is refused. [`Weakness::code`] is the machine word an API answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// Only whitespace.
    Blank,
    /// One of the commonest passwords (compared case-insensitively, ends trimmed).
    Common,
    /// The email address, or its local part, is in the password.
    ContainsEmail,
}

impl Weakness {
    pub fn code(self) -> &'static str {
        match self {
            Weakness::Blank => "whitespace_only",
            Weakness::Common => "too_common",
            Weakness::ContainsEmail => "contains_email",
        }
    }

    /// What to tell the person choosing it.
    pub fn explain(self) -> &'static str {
        match self {
            Weakness::Blank => "the password is only whitespace; choose one with other characters",
            Weakness::Common => {
                "the password is one of the most common passwords, the first ones an attacker tries; choose another"
            }
            Weakness::ContainsEmail => {
                "the password contains the account's email address; choose one that does not"
            }
        }
    }
}

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().filter(|l| !l.is_empty()).collect())
}

/// Why `password` is too weak for the account of `email`, or `None`.
pub fn weakness(password: &str, email: &str) -> Option<Weakness> {
    if password.trim().is_empty() {
        return Some(Weakness::Blank);
    }
    let lower = password.trim().to_lowercase();
    if common().contains(lower.as_str()) {
        return Some(Weakness::Common);
    }
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or("");
    if (!email.is_empty() && lower.contains(&email))
        || (local.chars().count() >= LOCAL_PART_CHARS_MIN && lower.contains(local))
    {
        return Some(Weakness::ContainsEmail);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_loaded_lower_case_and_only_of_reachable_lengths() {
        assert!(common().len() > 8000, "{}", common().len());
        assert!(
            common()
                .iter()
                .all(|p| p.chars().count() >= 8 && *p == p.to_lowercase())
        );
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for p in [
            "password",
            "12345678",
            "iloveyou",
            "Password1",
            " QWERTYUIOP ",
        ] {
            assert_eq!(
                weakness(p, "asha@example.com"),
                Some(Weakness::Common),
                "{p}"
            );
        }
    }

    #[test]
    fn whitespace_only_is_refused() {
        for p in ["        ", "\t\t\t\t\t\t\t\t", "\u{a0}\u{2003}        "] {
            assert_eq!(
                weakness(p, "asha@example.com"),
                Some(Weakness::Blank),
                "{p:?}"
            );
        }
    }

    #[test]
    fn the_email_or_its_local_part_inside_is_refused() {
        let email = "Asha.Rao@example.com";
        for p in ["asha.rao@example.com", "asha.rao2026!", "my ASHA.RAO pass"] {
            assert_eq!(weakness(p, email), Some(Weakness::ContainsEmail), "{p}");
        }
        // A local part too short to mean anything is not looked for.
        assert_eq!(weakness("jo-and-the-sea-9", "jo@example.com"), None);
    }

    #[test]
    fn a_good_password_passes() {
        for p in [
            "correct horse battery",
            "Tr0ub4dor&3 staple",
            "a brand new horse battery",
        ] {
            assert_eq!(weakness(p, "asha.rao@example.com"), None, "{p}");
        }
    }
}
