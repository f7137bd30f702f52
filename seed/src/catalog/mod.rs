//! A realistic generated catalog for demos and benchmarks: Indian cities, theaters of
//! the big chains, screens of varied layouts, movies (a few well-known titles, the
//! rest plausible inventions) and two weeks of shows with prices in INR.
//!
//! Everything is deterministic: each theater, screen, movie and screen-day draws
//! from its own random stream seeded by the catalog seed and its position, and every
//! id is a UUIDv5 of the same. Seeding again inserts nothing (`on conflict do
//! nothing`); seeding on a later day adds only the days not there yet. Movies do not
//! depend on the scale, so the small catalog's movies are the large one's first.
//!
//! [`generate_events`] adds a few concerts, a match, a play and a comedy night at
//! venues of their own in the first cities.
//!
//! [`generate`] is pure (the tests check its invariants without a database);
//! [`insert`] writes it with `UNNEST` batches, one statement (one transaction) per
//! chunk of rows.

mod data;
mod events;
pub mod layout;
mod write;

pub use events::generate_events;
pub use write::{Inserted, insert};

use contracts::{EventKind, ScreenLayout};
use rand::distr::weighted::WeightedIndex;
use rand::prelude::*;
use rand::rngs::StdRng;
use time::{Date, Duration, OffsetDateTime, Time, UtcOffset};
use uuid::Uuid;

/// How big a catalog to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// A short name, part of the ids: catalogs of different scales live side by side.
    pub name: &'static str,
    pub cities: usize,
    pub theaters: usize,
    pub screens: usize,
    pub movies: usize,
    /// The most shows: the schedule is filled day by day, every screen, until it
    /// holds this many or `days` are full.
    pub shows: usize,
    pub days: u32,
}

impl Scale {
    /// About the size of a large national catalog: every screen runs 4-5 shows a
    /// day for two weeks, about 47,000 shows (the cap is not reached).
    pub const LARGE: Scale = Scale {
        name: "large",
        cities: 20,
        theaters: 200,
        screens: 800,
        movies: 500,
        shows: 50_000,
        days: 14,
    };
    /// A handful of each, for the run command (about 140 shows).
    pub const SMALL: Scale = Scale {
        name: "small",
        cities: 3,
        theaters: 6,
        screens: 12,
        movies: 20,
        shows: 150,
        days: 3,
    };
}

/// What [`generate`] needs besides the scale.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub seed: u64,
    /// The first day of shows (Indian time).
    pub first_day: Date,
    /// Minutes a screen stays busy after a show (`catalog.cleaning_buffer_min`).
    pub cleaning_buffer_min: u32,
}

pub struct Theater {
    pub id: Uuid,
    pub name: String,
    pub city: String,
    pub address: String,
}

pub struct Screen {
    pub id: Uuid,
    pub theater_id: Uuid,
    pub name: String,
    pub layout: ScreenLayout,
    /// The layout's seat types, each of which every show of the screen prices.
    pub seat_types: Vec<String>,
    /// Price of each seat type before time-of-day and weekend surcharges, in paise.
    base_prices: Vec<i64>,
}

pub struct Movie {
    pub id: Uuid,
    /// `movie`, or the kind of an event ([`generate_events`]).
    pub kind: EventKind,
    pub title: String,
    pub genres: Vec<String>,
    pub cast: Vec<String>,
    pub duration_min: i32,
    pub rating: String,
    pub language: String,
    pub synopsis: String,
}

pub struct Show {
    pub id: Uuid,
    pub movie_id: Uuid,
    pub screen_id: Uuid,
    pub starts_at: OffsetDateTime,
    pub ends_at: OffsetDateTime,
    pub busy_until: OffsetDateTime,
    /// (seat type, amount in paise), one per seat type of the screen.
    pub prices: Vec<(String, i64)>,
}

pub struct Catalog {
    pub theaters: Vec<Theater>,
    pub screens: Vec<Screen>,
    pub movies: Vec<Movie>,
    pub shows: Vec<Show>,
}

impl Options {
    /// Shows from tomorrow, Indian time.
    pub fn starting_tomorrow(seed: u64, cleaning_buffer_min: u32) -> Self {
        Self {
            seed,
            first_day: OffsetDateTime::now_utc().to_offset(IST).date() + Duration::days(1),
            cleaning_buffer_min,
        }
    }
}

/// Indian Standard Time: shows are scheduled by the local clock.
const IST: UtcOffset = match UtcOffset::from_hms(5, 30, 0) {
    Ok(o) => o,
    Err(_) => panic!("a valid offset"),
};
/// A screen's first show of the day starts between 09:00 and 12:00 (morning shows
/// on some screens, matinees first on others); no show starts after 22:30.
const OPENING: Time = time::macros::time!(09:00);
const OPENING_SPREAD_5_MIN: i64 = 36;
const LAST_START: Time = time::macros::time!(22:30);
/// Advertisements and trailers before the film.
const ADS_MIN: i64 = 10;
/// Films of two hours or more stop for an interval.
const INTERVAL_MIN: i64 = 15;

/// A random stream of its own for one thing of the catalog (SplitMix64 of the seed
/// and the thing's coordinates), so that what one thing draws never shifts another.
fn stream(seed: u64, parts: &[u64]) -> StdRng {
    let mut x = seed;
    for p in parts {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15).wrapping_add(*p);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
    }
    StdRng::seed_from_u64(x)
}

/// Kinds of thing, the first coordinate of each [`stream`].
const THEATER: u64 = 1;
const SCREEN: u64 = 2;
const MOVIE: u64 = 3;
const SCREEN_DAY: u64 = 4;
const SCREEN_COUNTS: u64 = 5;

fn id(ns: &Uuid, name: &str) -> Uuid {
    Uuid::new_v5(ns, name.as_bytes())
}

fn namespace(seed: u64, scale: Option<&str>) -> Uuid {
    let name = match scale {
        Some(s) => format!("https://booking.local/catalog/{seed}/{s}"),
        None => format!("https://booking.local/catalog/{seed}"),
    };
    Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes())
}

/// The whole catalog of `scale`.
pub fn generate(scale: &Scale, opts: &Options) -> Catalog {
    let theaters = theaters(scale, opts.seed);
    let screens = screens(scale, opts.seed, &theaters);
    let movies = movies(scale.movies, opts.seed);
    let shows = shows(scale, opts, &screens, &movies);
    Catalog {
        theaters,
        screens,
        movies,
        shows,
    }
}

fn theaters(scale: &Scale, seed: u64) -> Vec<Theater> {
    let ns = namespace(seed, Some(scale.name));
    let cities = scale.cities.clamp(1, data::CITIES.len());
    (0..scale.theaters)
        .map(|i| {
            let mut rng = stream(seed, &[THEATER, i as u64]);
            let (city, _, localities) = data::CITIES[i % cities];
            let locality = localities[(i / cities) % localities.len()];
            let name = if rng.random_ratio(1, 5) {
                format!("{locality} Talkies")
            } else {
                let chain = data::CHAINS.choose(&mut rng).copied().unwrap_or("PVR");
                let mall = data::MALLS.choose(&mut rng).copied().unwrap_or("Mall");
                format!("{chain} {mall}, {locality}")
            };
            Theater {
                id: id(&ns, &format!("theater/{i}")),
                address: format!("{}, {locality}, {city}", rng.random_range(1..=250)),
                name,
                city: city.to_owned(),
            }
        })
        .collect()
}

/// How many screens each theater has: one each, the rest spread at random (at most
/// ten per theater), `scale.screens` in all.
fn screen_counts(scale: &Scale, seed: u64) -> Vec<usize> {
    let n = scale.theaters.max(1);
    let mut counts = vec![1; n];
    let mut rng = stream(seed, &[SCREEN_COUNTS]);
    let mut left = scale.screens.saturating_sub(n).min(n * 9);
    while left > 0 {
        let t = rng.random_range(0..n);
        if counts[t] < 10 {
            counts[t] += 1;
            left -= 1;
        }
    }
    counts
}

fn screens(scale: &Scale, seed: u64, theaters: &[Theater]) -> Vec<Screen> {
    let ns = namespace(seed, Some(scale.name));
    let counts = screen_counts(scale, seed);
    let metro = |city: &str| data::CITIES.iter().any(|(c, m, _)| *c == city && *m);
    let mut out = Vec::with_capacity(scale.screens);
    for (t, (theater, count)) in theaters.iter().zip(counts).enumerate() {
        for j in 0..count {
            let mut rng = stream(seed, &[SCREEN, t as u64, j as u64]);
            let layout = layout::screen_layout(&mut rng);
            let seat_types = layout::seat_types(&layout);
            let base_prices = seat_types
                .iter()
                .map(|st| base_price(&mut rng, st, metro(&theater.city)))
                .collect();
            out.push(Screen {
                id: id(&ns, &format!("screen/{t}/{j}")),
                theater_id: theater.id,
                name: format!("Audi {}", j + 1),
                layout,
                seat_types,
                base_prices,
            });
        }
    }
    out
}

/// A ticket price in paise: by seat type, dearer in metros, in steps of 10 rupees.
fn base_price(rng: &mut StdRng, seat_type: &str, metro: bool) -> i64 {
    let rupees: i64 = match seat_type {
        "recliner" => rng.random_range(450..=750),
        "premium" => rng.random_range(220..=380),
        _ => rng.random_range(140..=220),
    };
    let rupees = if metro { rupees * 6 / 5 } else { rupees };
    rupees / 10 * 10 * 100
}

fn movies(n: usize, seed: u64) -> Vec<Movie> {
    let ns = namespace(seed, None);
    let mut titles = std::collections::HashSet::new();
    (0..n)
        .map(|i| {
            let mut rng = stream(seed, &[MOVIE, i as u64]);
            let mut m = match data::KNOWN_MOVIES.get(i) {
                Some(k) => known_movie(k),
                None => invented_movie(&mut rng),
            };
            // A clash of invented titles is a sequel.
            let base = m.title.clone();
            let mut part = 2;
            while !titles.insert(m.title.clone()) {
                m.title = format!("{base} {part}");
                part += 1;
            }
            m.id = id(&ns, &format!("movie/{i}"));
            m
        })
        .collect()
}

fn known_movie(k: &data::KnownMovie) -> Movie {
    Movie {
        id: Uuid::nil(),
        kind: EventKind::Movie,
        title: k.title.to_owned(),
        genres: k.genres.iter().map(|g| (*g).to_owned()).collect(),
        cast: k.cast.iter().map(|c| (*c).to_owned()).collect(),
        duration_min: k.duration_min,
        rating: k.rating.to_owned(),
        language: k.language.to_owned(),
        synopsis: format!("{}: now showing.", k.title),
    }
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn weighted<'a>(rng: &mut StdRng, items: &[(&'a str, u32)]) -> &'a str {
    WeightedIndex::new(items.iter().map(|(_, w)| *w))
        .map(|d| items[d.sample(rng)].0)
        .unwrap_or(items[0].0)
}

fn invented_movie(rng: &mut StdRng) -> Movie {
    let language = weighted(rng, &data::LANGUAGES);
    let title = match language {
        "Hindi" => match rng.random_range(0..3) {
            0 => format!(
                "{} {}",
                pick(rng, &data::HINDI_WORDS),
                pick(rng, &data::HINDI_WORDS)
            ),
            1 => format!("Ek {} Aur", pick(rng, &data::HINDI_WORDS)),
            _ => pick(rng, &data::HINDI_WORDS).to_owned(),
        },
        "Tamil" | "Telugu" | "Malayalam" | "Kannada" => {
            let word = pick(rng, &data::SOUTH_WORDS);
            if rng.random_bool(0.5) {
                word.to_owned()
            } else {
                format!("{word} {}", pick(rng, &data::TITLE_NOUNS))
            }
        }
        _ => match rng.random_range(0..3) {
            0 => format!(
                "The {} {}",
                pick(rng, &data::TITLE_ADJECTIVES),
                pick(rng, &data::TITLE_NOUNS)
            ),
            1 => format!(
                "{} of the {}",
                pick(rng, &data::TITLE_NOUNS),
                pick(rng, &data::TITLE_NOUNS)
            ),
            _ => format!(
                "{} {}",
                pick(rng, &data::TITLE_ADJECTIVES),
                pick(rng, &data::TITLE_NOUNS)
            ),
        },
    };
    let mut genres: Vec<String> = (0..rng.random_range(1..=3))
        .map(|_| pick(rng, &data::GENRES).to_owned())
        .collect();
    genres.sort();
    genres.dedup();
    let cast = (0..rng.random_range(2..=5))
        .map(|_| {
            format!(
                "{} {}",
                pick(rng, &data::FIRST_NAMES),
                pick(rng, &data::LAST_NAMES)
            )
        })
        .collect();
    Movie {
        id: Uuid::nil(),
        kind: EventKind::Movie,
        synopsis: format!(
            "{} {}.",
            pick(rng, &data::SYNOPSIS_OPENINGS),
            pick(rng, &data::SYNOPSIS_TURNS)
        ),
        title,
        genres,
        cast,
        duration_min: rng.random_range(95..=185),
        rating: weighted(rng, &data::RATINGS).to_owned(),
        language: language.to_owned(),
    }
}

/// The schedule: day by day, every screen, until `scale.shows`.
fn shows(scale: &Scale, opts: &Options, screens: &[Screen], movies: &[Movie]) -> Vec<Show> {
    if movies.is_empty() {
        return vec![];
    }
    let ns = namespace(opts.seed, Some(scale.name));
    // Popular movies get more screens: weight 1/(rank+1).
    let popularity = WeightedIndex::new((0..movies.len()).map(|r| 1.0 / (r as f64 + 1.0)))
        .expect("positive weights");
    let mut out = Vec::new();
    for day in 0..scale.days {
        let date = opts.first_day + Duration::days(i64::from(day));
        for (s, screen) in screens.iter().enumerate() {
            let mut rng = stream(
                opts.seed,
                &[
                    SCREEN_DAY,
                    s as u64,
                    u64::from(date.to_julian_day().unsigned_abs()),
                ],
            );
            // A screen plays one or two movies a day.
            let playing: Vec<&Movie> = (0..rng.random_range(1..=2))
                .map(|_| &movies[popularity.sample(&mut rng)])
                .collect();
            for show in screen_day(&mut rng, &ns, opts, screen, date, &playing) {
                if out.len() == scale.shows {
                    return out;
                }
                out.push(show);
            }
        }
    }
    out
}

/// One screen's shows on `date`, back to back: a show ends after trailers, the film
/// and its interval; the next starts once the screen is free (`busy_until` = end +
/// cleaning buffer), on a five-minute mark.
fn screen_day(
    rng: &mut StdRng,
    ns: &Uuid,
    opts: &Options,
    screen: &Screen,
    date: Date,
    playing: &[&Movie],
) -> Vec<Show> {
    let weekend = matches!(
        date.weekday(),
        time::Weekday::Saturday | time::Weekday::Sunday
    );
    let last_start = date.with_time(LAST_START).assume_offset(IST);
    let mut start = date.with_time(OPENING).assume_offset(IST)
        + Duration::minutes(5 * rng.random_range(0..=OPENING_SPREAD_5_MIN));
    let mut out = Vec::new();
    let mut slot = 0;
    while start <= last_start {
        let movie = playing[slot % playing.len()];
        let ends_at = start + Duration::minutes(running_time_min(movie));
        let busy_until = ends_at + Duration::minutes(i64::from(opts.cleaning_buffer_min));
        let evening = start.hour() >= 18;
        out.push(Show {
            id: id(ns, &format!("show/{}/{date}/{slot}", screen.id)),
            movie_id: movie.id,
            screen_id: screen.id,
            starts_at: start.to_offset(UtcOffset::UTC),
            ends_at: ends_at.to_offset(UtcOffset::UTC),
            busy_until: busy_until.to_offset(UtcOffset::UTC),
            prices: screen
                .seat_types
                .iter()
                .zip(&screen.base_prices)
                .map(|(t, base)| (t.clone(), surcharged(*base, evening, weekend)))
                .collect(),
        });
        start = round_up_to_5_min(busy_until);
        slot += 1;
    }
    out
}

/// From the first trailer to the credits.
fn running_time_min(movie: &Movie) -> i64 {
    let film = i64::from(movie.duration_min);
    ADS_MIN + film + if film >= 120 { INTERVAL_MIN } else { 0 }
}

/// Evenings cost 15% more, weekends 10% more; in whole rupees.
fn surcharged(base: i64, evening: bool, weekend: bool) -> i64 {
    let mut p = base;
    if evening {
        p = p * 115 / 100;
    }
    if weekend {
        p = p * 110 / 100;
    }
    p / 100 * 100
}

fn round_up_to_5_min(t: OffsetDateTime) -> OffsetDateTime {
    let over = (t.minute() % 5) as i64;
    let t = t
        .replace_second(0)
        .unwrap_or(t)
        .replace_nanosecond(0)
        .unwrap_or(t);
    if over == 0 {
        t
    } else {
        t + Duration::minutes(5 - over)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            seed: 42,
            first_day: time::macros::date!(2026 - 12 - 01),
            cleaning_buffer_min: 15,
        }
    }

    #[test]
    fn the_large_catalog_has_its_size_and_famous_titles() {
        let c = generate(&Scale::LARGE, &opts());
        assert_eq!(c.theaters.len(), 200);
        assert_eq!(c.screens.len(), 800);
        assert_eq!(c.movies.len(), 500);
        assert!(
            (45_000..=50_000).contains(&c.shows.len()),
            "{}",
            c.shows.len()
        );
        let days: std::collections::BTreeSet<_> = c
            .shows
            .iter()
            .map(|s| s.starts_at.to_offset(IST).date())
            .collect();
        assert_eq!(days.len(), 14);
        let cities: std::collections::BTreeSet<_> = c.theaters.iter().map(|t| &t.city).collect();
        assert_eq!(cities.len(), 20);
        assert!(c.movies.iter().any(|m| m.title == "Avengers: Endgame"));
        let titles: std::collections::HashSet<_> = c.movies.iter().map(|m| &m.title).collect();
        assert_eq!(titles.len(), 500, "titles are unique");
    }

    #[test]
    fn generation_is_deterministic_and_movies_do_not_depend_on_the_scale() {
        let a = generate(&Scale::SMALL, &opts());
        let b = generate(&Scale::SMALL, &opts());
        let ids = |c: &Catalog| c.shows.iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        let large = movies(Scale::LARGE.movies, 42);
        for (s, l) in a.movies.iter().zip(&large) {
            assert_eq!((s.id, &s.title), (l.id, &l.title));
        }
    }

    #[test]
    fn shows_on_a_screen_never_overlap_and_price_every_seat_type() {
        let c = generate(&Scale::LARGE, &opts());
        let mut by_screen: std::collections::HashMap<Uuid, Vec<&Show>> = Default::default();
        for s in &c.shows {
            by_screen.entry(s.screen_id).or_default().push(s);
        }
        let screens: std::collections::HashMap<Uuid, &Screen> =
            c.screens.iter().map(|s| (s.id, s)).collect();
        for (screen, mut shows) in by_screen {
            shows.sort_by_key(|s| s.starts_at);
            for pair in shows.windows(2) {
                assert!(
                    pair[0].busy_until <= pair[1].starts_at,
                    "overlap on {screen}"
                );
                assert_eq!(pair[0].busy_until - pair[0].ends_at, Duration::minutes(15));
            }
            let types = &screens[&screen].seat_types;
            for s in shows {
                let priced: Vec<_> = s.prices.iter().map(|(t, _)| t).collect();
                assert_eq!(priced, types.iter().collect::<Vec<_>>());
                assert!(s.prices.iter().all(|(_, a)| *a >= 10_000 && a % 100 == 0));
            }
        }
    }
}
