//! Times as the API answers them.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 (`2026-11-25T18:30:00Z`); every time the API answers goes through here.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}
