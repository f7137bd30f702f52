//! What kind of thing a catalog entry is: a movie, a concert, a match... Stored in
//! `movies.kind` (events and movies share one table and one id space) and served by
//! the API as a lower-case word.

use serde::{Deserialize, Serialize};

/// The kind of an event. `/v1/movies` lists only `movie`; `/v1/events` lists all.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Movie,
    Concert,
    Sports,
    Play,
    Comedy,
    Other,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Movie,
        EventKind::Concert,
        EventKind::Sports,
        EventKind::Play,
        EventKind::Comedy,
        EventKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Movie => "movie",
            EventKind::Concert => "concert",
            EventKind::Sports => "sports",
            EventKind::Play => "play",
            EventKind::Comedy => "comedy",
            EventKind::Other => "other",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown kind {s:?}: one of movie, concert, sports, play, comedy, other")
            })
    }
}

/// A stored `movies.kind` read into the type (sqlx's `try_from` field attribute).
impl TryFrom<String> for EventKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name_and_json() {
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert!("Movie".parse::<EventKind>().is_err());
    }
}
