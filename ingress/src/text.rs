//! Free text that becomes visible to other people (names of accounts, theaters,
//! screens, events; emails shown to staff): bounded, trimmed, and without characters
//! that print nothing but change what is shown. Control characters (Unicode `Cc`)
//! and formatting characters (`Cf`: the zero-width U+200B-U+200F, the bidi
//! embeddings and overrides U+202A-U+202E and isolates U+2066-U+2069, U+FEFF, the
//! soft hyphen, ...) are refused: a right-to-left override makes `Theater
//! \u{202E}rekcit` read as something else, and a zero-width space makes two names
//! that look the same differ (or one that looks like another's match nobody's).

use crate::problem::ApiError;
use unicode_general_category::{GeneralCategory, get_general_category};

/// A character that must not be in visible text: a control or a formatting one.
pub fn invisible(c: char) -> bool {
    c.is_control() || get_general_category(c) == GeneralCategory::Format
}

/// A bounded (`max` characters), trimmed, non-empty text without [`invisible`]
/// characters, else `422 validation_failed` naming `field`.
pub fn clean(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    let v = raw.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(invisible) {
        return Err(ApiError::Validation(format!(
            "{field} must be 1 to {max} characters, without control or invisible formatting characters (zero-width, bidi controls)"
        )));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_width_bidi_and_other_format_characters_are_invisible() {
        let refused = [
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}',
            '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
            '\u{FEFF}', '\u{00AD}', '\u{2060}', '\u{0000}', '\u{001B}', '\u{007F}',
        ];
        for c in refused {
            assert!(invisible(c), "U+{:04X}", c as u32);
            assert!(clean("name", &format!("Asha{c}Rao"), 100).is_err());
        }
        for ok in [
            "Asha Rao",
            "आशा राव",
            "Zoë's Café",
            "PVR: Phoenix — Screen 2",
            "東京",
        ] {
            assert_eq!(clean("name", ok, 100).unwrap(), ok);
        }
        assert_eq!(clean("name", "  padded  ", 100).unwrap(), "padded");
        assert!(clean("name", "   ", 100).is_err());
        assert!(clean("name", &"x".repeat(101), 100).is_err());
    }
}
