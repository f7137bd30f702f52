//! Events beside the movies: a few concerts, a cricket match, a play and a stand-up
//! night in the first cities of the catalog, each at a venue of its own (an arena,
//! a stadium stand, a playhouse), with evening shows over the catalog's days.
//!
//! Like the rest of the catalog it is deterministic (ids are UUIDv5 of the seed and
//! the position) and idempotent, and it does not depend on the scale beyond the
//! cities and days: the small and the large catalog have the same events.

use super::{Catalog, IST, Movie, Options, Scale, Screen, Show, Theater, data, id, namespace};
use contracts::layout::row_label;
use contracts::{EventKind, LayoutRow, LayoutSeat, ScreenLayout};
use time::{Duration, Time, UtcOffset};

/// A venue and the event it hosts.
struct Listing {
    /// Index into [`data::CITIES`].
    city: usize,
    venue: &'static str,
    locality: &'static str,
    space: &'static str,
    /// Rows of seats (the back third premium) and seats per row.
    rows: usize,
    per_row: u16,
    kind: EventKind,
    title: &'static str,
    genres: &'static [&'static str],
    /// The artists, the cast or the teams.
    performers: &'static [&'static str],
    duration_min: i32,
    language: &'static str,
    synopsis: &'static str,
    /// Local start time, and every how many days the event plays (1: every day).
    starts: Time,
    every_days: u32,
    /// Regular and premium prices, in rupees.
    rupees: (i64, i64),
}

const LISTINGS: [Listing; 6] = [
    Listing {
        city: 0,
        venue: "NSCI Dome",
        locality: "Worli",
        space: "Arena",
        rows: 20,
        per_row: 30,
        kind: EventKind::Concert,
        title: "Arijit Singh Live in Concert",
        genres: &["bollywood", "live"],
        performers: &["Arijit Singh"],
        duration_min: 180,
        language: "Hindi",
        synopsis: "Two decades of love songs, one night, a full band.",
        starts: time::macros::time!(19:30),
        every_days: 2,
        rupees: (1500, 4500),
    },
    Listing {
        city: 0,
        venue: "Wankhede Stadium",
        locality: "Churchgate",
        space: "North Stand",
        rows: 26,
        per_row: 40,
        kind: EventKind::Sports,
        title: "Mumbai Indians vs Chennai Super Kings",
        genres: &["cricket", "t20"],
        performers: &["Mumbai Indians", "Chennai Super Kings"],
        duration_min: 240,
        language: "English",
        synopsis: "The oldest rivalry of the league, under the lights.",
        starts: time::macros::time!(19:30),
        every_days: 3,
        rupees: (900, 2500),
    },
    Listing {
        city: 1,
        venue: "Kamani Auditorium",
        locality: "Mandi House",
        space: "Main Hall",
        rows: 14,
        per_row: 24,
        kind: EventKind::Play,
        title: "Piya Behrupiya",
        genres: &["theatre", "musical"],
        performers: &["The Company Theatre"],
        duration_min: 150,
        language: "Hindi",
        synopsis: "Twelfth Night as a Hindustani musical romp.",
        starts: time::macros::time!(19:00),
        every_days: 1,
        rupees: (500, 1200),
    },
    Listing {
        city: 1,
        venue: "Jawaharlal Nehru Stadium",
        locality: "Lodhi Road",
        space: "East Stand",
        rows: 24,
        per_row: 36,
        kind: EventKind::Concert,
        title: "Prateek Kuhad: Silhouettes Tour",
        genres: &["indie", "live"],
        performers: &["Prateek Kuhad"],
        duration_min: 150,
        language: "English",
        synopsis: "Quiet songs for a big crowd.",
        starts: time::macros::time!(20:00),
        every_days: 2,
        rupees: (1200, 3500),
    },
    Listing {
        city: 2,
        venue: "Phoenix Marketcity Arena",
        locality: "Whitefield",
        space: "Hall A",
        rows: 18,
        per_row: 28,
        kind: EventKind::Concert,
        title: "Sunburn Arena ft. Martin Garrix",
        genres: &["electronic", "live"],
        performers: &["Martin Garrix"],
        duration_min: 240,
        language: "English",
        synopsis: "The biggest night of dance music this season.",
        starts: time::macros::time!(20:00),
        every_days: 2,
        rupees: (2000, 6000),
    },
    Listing {
        city: 2,
        venue: "Chowdiah Memorial Hall",
        locality: "Malleshwaram",
        space: "Main Hall",
        rows: 12,
        per_row: 20,
        kind: EventKind::Comedy,
        title: "Zakir Khan: Mannpasand",
        genres: &["stand-up"],
        performers: &["Zakir Khan"],
        duration_min: 90,
        language: "Hindi",
        synopsis: "Stories of a middle-class boy, told to a full hall.",
        starts: time::macros::time!(21:00),
        every_days: 1,
        rupees: (800, 1500),
    },
];

/// Rows of regular seats, the back third premium; an aisle in the middle.
fn venue_layout(rows: usize, per_row: u16) -> ScreenLayout {
    ScreenLayout {
        rows: (0..rows)
            .map(|i| LayoutRow {
                row: row_label(i),
                seats: (1..=per_row)
                    .map(|n| LayoutSeat {
                        number: n,
                        seat_type: if i >= rows * 2 / 3 {
                            "premium"
                        } else {
                            "regular"
                        }
                        .to_owned(),
                        blocked: false,
                    })
                    .collect(),
                aisles_after: vec![per_row / 2],
            })
            .collect(),
        focal_point: None,
        zones: vec![],
        mixed_booking: false,
    }
}

/// The events of the catalog's first cities (at most three, as many as `scale`
/// has), with their venues and shows over `scale.days` from `opts.first_day`.
pub fn generate_events(scale: &Scale, opts: &Options) -> Catalog {
    let venues_ns = namespace(opts.seed, Some("events"));
    let events_ns = namespace(opts.seed, None);
    let cities = scale.cities.clamp(1, 3);
    let mut c = Catalog {
        theaters: vec![],
        screens: vec![],
        movies: vec![],
        shows: vec![],
    };
    for (i, l) in LISTINGS.iter().enumerate().filter(|(_, l)| l.city < cities) {
        let (city, _, _) = data::CITIES[l.city];
        let theater = Theater {
            id: id(&venues_ns, &format!("venue/{i}")),
            name: l.venue.to_owned(),
            city: city.to_owned(),
            address: format!("{}, {city}", l.locality),
        };
        let layout = venue_layout(l.rows, l.per_row);
        let seat_types = super::layout::seat_types(&layout);
        let base_prices = seat_types
            .iter()
            .map(|t| {
                100 * if t == "premium" {
                    l.rupees.1
                } else {
                    l.rupees.0
                }
            })
            .collect();
        let screen = Screen {
            id: id(&venues_ns, &format!("space/{i}")),
            theater_id: theater.id,
            name: l.space.to_owned(),
            layout,
            seat_types,
            base_prices,
        };
        let event = Movie {
            id: id(&events_ns, &format!("event/{i}")),
            kind: l.kind,
            title: l.title.to_owned(),
            genres: l.genres.iter().map(|g| (*g).to_owned()).collect(),
            cast: l.performers.iter().map(|p| (*p).to_owned()).collect(),
            duration_min: l.duration_min,
            rating: String::new(),
            language: l.language.to_owned(),
            synopsis: l.synopsis.to_owned(),
        };
        for day in (0..scale.days).filter(|d| d % l.every_days == 0) {
            let date = opts.first_day + Duration::days(i64::from(day));
            let starts = date.with_time(l.starts).assume_offset(IST);
            let ends = starts + Duration::minutes(i64::from(l.duration_min));
            let busy = ends + Duration::minutes(i64::from(opts.cleaning_buffer_min));
            c.shows.push(Show {
                id: id(&venues_ns, &format!("show/{i}/{date}")),
                movie_id: event.id,
                screen_id: screen.id,
                starts_at: starts.to_offset(UtcOffset::UTC),
                ends_at: ends.to_offset(UtcOffset::UTC),
                busy_until: busy.to_offset(UtcOffset::UTC),
                prices: screen
                    .seat_types
                    .iter()
                    .cloned()
                    .zip(screen.base_prices.iter().copied())
                    .collect(),
            });
        }
        c.theaters.push(theater);
        c.screens.push(screen);
        c.movies.push(event);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_has_concerts_a_match_and_a_play_in_three_cities_every_other_evening() {
        let opts = Options {
            seed: 42,
            first_day: time::macros::date!(2026 - 12 - 01),
            cleaning_buffer_min: 15,
        };
        let c = generate_events(&Scale::SMALL, &opts);
        let kinds: Vec<EventKind> = c.movies.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == EventKind::Concert).count(),
            3
        );
        assert!(kinds.contains(&EventKind::Sports) && kinds.contains(&EventKind::Play));
        let cities: std::collections::BTreeSet<_> = c.theaters.iter().map(|t| &t.city).collect();
        assert_eq!(cities.len(), 3);
        assert!(
            c.shows
                .iter()
                .all(|s| s.starts_at.to_offset(IST).hour() >= 19)
        );
        for s in &c.shows {
            let screen = c.screens.iter().find(|x| x.id == s.screen_id).unwrap();
            screen.layout.validate().unwrap();
            let priced: Vec<&String> = s.prices.iter().map(|(t, _)| t).collect();
            let types = super::super::layout::seat_types(&screen.layout);
            assert_eq!(priced, types.iter().collect::<Vec<_>>());
        }
        // The same catalog again: the same ids.
        let again = generate_events(&Scale::SMALL, &opts);
        assert_eq!(
            c.shows.iter().map(|s| s.id).collect::<Vec<_>>(),
            again.shows.iter().map(|s| s.id).collect::<Vec<_>>()
        );
    }
}
