//! The catalog read model: what buyers browse (movie and event lists and searches,
//! show times, show details, live seat maps), independent of HTTP; the handlers are
//! in [`crate::routes::catalog`] and the admin routes reuse the views.
//!
//! Events of every kind are rows of the movies table with a `kind`; the movie
//! lists are the `movie` kind of the event lists. Show times are answered in UTC
//! and on the theater's clock ([`platform::localtime`]); `date=` is the theater's
//! local day ([`ShowFilter`]).
//!
//! Lists are keyset-paginated and built with only the filters given, so each
//! query shape gets its own plan. Movie lists are memoised for a moment
//! ([`crate::memo`]); seat maps come from Redis, where the sequencer runner writes
//! them after each commit, and are rebuilt from PostgreSQL when missing.

mod filters;
mod movies;
pub mod seats;
mod shows;

pub use filters::{KindQuery, MovieFilter, MovieQuery, ShowFilter, ShowQuery};
pub use movies::{
    Availability, EventSummary, EventView, MovieListKey, MovieLists, MovieSummary, MovieView,
};
pub use shows::{EventRef, MovieRef, ScreenRef, ShowSummary, ShowView, TheaterRef};

use platform::settings::CatalogSettings;
use sqlx::PgPool;
use std::time::Duration;

/// Most memoised movie lists (each a page of at most 100 small items).
const MOVIE_LISTS_MAX: usize = 10_000;

/// The catalog's reads over one pool, with their memoised answers.
#[derive(Clone)]
pub struct Catalog {
    db: PgPool,
    /// Movie lists and searches, memoised for `catalog.list_cache_ttl_ms`.
    movie_lists: MovieLists,
    /// Movies with upcoming on-sale shows, per city and day, memoised for
    /// `catalog.availability_ttl_ms`.
    availability: Availability,
}

impl Catalog {
    pub fn new(db: PgPool, settings: &CatalogSettings) -> Self {
        Self {
            db,
            movie_lists: MovieLists::new(
                Duration::from_millis(settings.list_cache_ttl_ms),
                MOVIE_LISTS_MAX,
            ),
            availability: Availability::new(
                Duration::from_millis(settings.availability_ttl_ms),
                MOVIE_LISTS_MAX,
            ),
        }
    }
}
