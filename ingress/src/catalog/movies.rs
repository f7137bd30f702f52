//! Movie and event lists, searches and details. Events of every kind live in the
//! movies table (`kind`); `/v1/movies` is the `movie` kind of the same lists.

use super::Catalog;
use super::filters::{MovieFilter, ShowFilter};
use crate::pagination::{Page, PageParams};
use crate::problem::ApiError;
use contracts::EventKind;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use utoipa::ToSchema;
use uuid::Uuid;

/// Rank bonus of a title equal to the search text, so the exact title comes first.
const EXACT_TITLE_BONUS: f64 = 10.0;

/// The event lists memoised by [`crate::memo::Memo`].
pub type MovieLists = crate::memo::Memo<MovieListKey, std::sync::Arc<Page<EventSummary>>>;

/// The events with upcoming on-sale shows matching a [`ShowFilter`]: the expensive
/// part of a list (it looks at thousands of shows), shared by every list and
/// search with the same city and day, whatever the kind.
pub type Availability = crate::memo::Memo<ShowFilter, std::sync::Arc<Vec<Uuid>>>;

/// A movie in a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "0193a000-0000-7000-8000-000000000001", "title": "Avengers: Endgame", "genres": ["action"], "duration_min": 181, "rating": "UA", "language": "English"}))]
pub struct MovieSummary {
    pub id: Uuid,
    pub title: String,
    pub genres: Vec<String>,
    pub duration_min: i32,
    pub rating: Option<String>,
    pub language: Option<String>,
}

/// An event (of any kind, movies included) in a list.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({"id": "0193a000-0000-7000-8000-000000000005", "kind": "concert", "title": "Arijit Singh Live in Concert", "genres": ["bollywood", "live"], "duration_min": 180, "rating": null, "language": "Hindi"}))]
pub struct EventSummary {
    pub id: Uuid,
    #[sqlx(try_from = "String")]
    pub kind: EventKind,
    pub title: String,
    pub genres: Vec<String>,
    pub duration_min: i32,
    pub rating: Option<String>,
    pub language: Option<String>,
}

impl From<EventSummary> for MovieSummary {
    fn from(e: EventSummary) -> Self {
        Self {
            id: e.id,
            title: e.title,
            genres: e.genres,
            duration_min: e.duration_min,
            rating: e.rating,
            language: e.language,
        }
    }
}

/// A list row with its sort key.
#[derive(Debug, Clone, sqlx::FromRow)]
struct EventRow {
    #[sqlx(flatten)]
    event: EventSummary,
    sort_title: String,
    sort_rank: f64,
}

/// The sort key of the last event of a page: (lower(title), id) without a search,
/// (rank, id) with one. Each list refuses the other's cursors (a 400).
#[derive(Debug, Serialize, Deserialize)]
struct TitleCursor(String, Uuid);
#[derive(Debug, Serialize, Deserialize)]
struct RankCursor(f64, Uuid);

/// Words of the search text as a prefix `tsquery` (`aven end` finds "Avengers:
/// Endgame" while typing). Only letters and digits go in, each word quoted, so it
/// always parses (a word PostgreSQL splits further becomes a phrase).
fn prefix_tsquery(q: &str) -> String {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("'{}':*", w.to_lowercase()))
        .collect::<Vec<_>>()
        .join(" & ")
}

/// What a memoised list is keyed by: everything the answer depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MovieListKey {
    filter: MovieFilter,
    limit: u32,
    cursor: Option<String>,
}

/// The events with an upcoming on-sale show matching `f`, memoised.
async fn available_events(
    catalog: &Catalog,
    f: &ShowFilter,
) -> Result<std::sync::Arc<Vec<Uuid>>, ApiError> {
    catalog
        .availability
        .get_or_try_load(f.clone(), || async {
            let mut b = QueryBuilder::new("select distinct s.movie_id from shows s");
            f.push_joins(&mut b);
            b.push(" where");
            f.push_conditions(&mut b);
            let ids: Vec<Uuid> = b.build_query_scalar().fetch_all(&catalog.db).await?;
            Ok::<_, ApiError>(std::sync::Arc::new(ids))
        })
        .await
}

fn push_available(b: &mut QueryBuilder<Postgres>, ids: &[Uuid]) {
    b.push(" and m.id = any(").push_bind(ids.to_vec()).push(")");
}

/// The kind and genre conditions; a genre compares case-insensitively.
fn push_kind_and_genre(b: &mut QueryBuilder<Postgres>, f: &MovieFilter) {
    if let Some(kind) = f.kind {
        b.push(" and m.kind = ").push_bind(kind.as_str());
    }
    if let Some(g) = &f.genre {
        b.push(" and exists (select 1 from unnest(m.genres) g where lower(g) = lower(")
            .push_bind(g.clone())
            .push("))");
    }
}

const SUMMARY_COLUMNS: &str = "m.id, m.kind, m.title, m.genres, m.duration_min, m.rating, m.language, lower(m.title) as sort_title";

/// The query of a list without search text, ordered by title then id.
fn by_title_query(
    f: &MovieFilter,
    available: &[Uuid],
    after: Option<TitleCursor>,
    limit: u32,
) -> QueryBuilder<Postgres> {
    let mut b = QueryBuilder::new("select ");
    b.push(SUMMARY_COLUMNS)
        .push(", 0::float8 as sort_rank from movies m where true");
    push_kind_and_genre(&mut b, f);
    if let Some(TitleCursor(title, id)) = after {
        b.push(" and (lower(m.title), m.id) > (")
            .push_bind(title)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    push_available(&mut b, available);
    b.push(" order by lower(m.title), m.id limit ")
        .push_bind(i64::from(limit) + 1);
    b
}

/// The query of a search, ordered by rank (full-text rank + trigram similarity +
/// a bonus for the exact title) descending, then id.
fn by_rank_query(
    f: &MovieFilter,
    available: &[Uuid],
    q: &str,
    after: Option<RankCursor>,
    limit: u32,
) -> QueryBuilder<Postgres> {
    let mut b = QueryBuilder::new("select * from (select ");
    b.push(SUMMARY_COLUMNS).push(
        ", (ts_rank(m.search, tsq)::float8 + word_similarity(lq, movie_search_text(m.title, m.cast_members))::float8 + case when lower(m.title) = lq then ",
    );
    b.push(format!("{EXACT_TITLE_BONUS:.1}"))
        .push(" else 0 end) as sort_rank from movies m, to_tsquery('simple', ")
        .push_bind(prefix_tsquery(q))
        .push(") as tsq, lower(")
        .push_bind(q.to_owned())
        .push(
            ") as lq where (m.search @@ tsq or lq <% movie_search_text(m.title, m.cast_members))",
        );
    push_kind_and_genre(&mut b, f);
    push_available(&mut b, available);
    b.push(") r");
    if let Some(RankCursor(rank, id)) = after {
        b.push(" where (r.sort_rank < ")
            .push_bind(rank)
            .push(" or (r.sort_rank = ")
            .push_bind(rank)
            .push(" and r.id > ")
            .push_bind(id)
            .push("))");
    }
    b.push(" order by r.sort_rank desc, r.id limit ")
        .push_bind(i64::from(limit) + 1);
    b
}

async fn event_page(
    catalog: &Catalog,
    f: &MovieFilter,
    page: &PageParams,
    limit: u32,
) -> Result<Page<EventSummary>, ApiError> {
    match &f.q {
        None => {
            let after = page.cursor::<TitleCursor>()?;
            // PostgreSQL text cannot hold NUL: such a cursor is not one of ours.
            if after.as_ref().is_some_and(|c| c.0.contains('\0')) {
                return Err(ApiError::BadRequest(
                    "cursor is not a next_cursor of this list".to_owned(),
                ));
            }
            let mut query =
                by_title_query(f, &available_events(catalog, &f.shows).await?, after, limit);
            let rows: Vec<EventRow> = query.build_query_as().fetch_all(&catalog.db).await?;
            Ok(Page::from_rows(rows, limit, |r| {
                TitleCursor(r.sort_title.clone(), r.event.id)
            })
            .map(|r| r.event))
        }
        Some(q) => {
            let after = page.cursor::<RankCursor>()?;
            let available = available_events(catalog, &f.shows).await?;
            let mut query = by_rank_query(f, &available, q, after, limit);
            let rows: Vec<EventRow> = query.build_query_as().fetch_all(&catalog.db).await?;
            Ok(
                Page::from_rows(rows, limit, |r| RankCursor(r.sort_rank, r.event.id))
                    .map(|r| r.event),
            )
        }
    }
}

/// A movie.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({"id": "0193a000-0000-7000-8000-000000000001", "kind": "movie", "title": "Avengers: Endgame", "genres": ["action"], "cast": ["Robert Downey Jr."], "duration_min": 181, "rating": "UA", "language": "English", "synopsis": "The last stand."}))]
pub struct MovieView {
    pub id: Uuid,
    /// `movie` for every movie of `/v1/movies`; an admin may answer other kinds.
    #[sqlx(try_from = "String")]
    pub kind: EventKind,
    pub title: String,
    pub genres: Vec<String>,
    pub cast: Vec<String>,
    pub duration_min: i32,
    pub rating: Option<String>,
    pub language: Option<String>,
    pub synopsis: String,
}

/// An event of any kind (movies included).
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({"id": "0193a000-0000-7000-8000-000000000005", "kind": "sports", "title": "Mumbai Indians vs Chennai Super Kings", "genres": ["cricket"], "performers": ["Mumbai Indians", "Chennai Super Kings"], "duration_min": 240, "rating": null, "language": "English", "synopsis": "Under the lights."}))]
pub struct EventView {
    pub id: Uuid,
    #[sqlx(try_from = "String")]
    pub kind: EventKind,
    pub title: String,
    pub genres: Vec<String>,
    /// Who is on stage or on the field: a movie's cast, a concert's artists, a
    /// match's teams, a play's company.
    pub performers: Vec<String>,
    pub duration_min: i32,
    pub rating: Option<String>,
    pub language: Option<String>,
    pub synopsis: String,
}

impl Catalog {
    /// Movies that have upcoming on-sale shows matching the filter, memoised for
    /// `catalog.list_cache_ttl_ms`.
    pub async fn movies(
        &self,
        filter: MovieFilter,
        page: &PageParams,
    ) -> Result<Page<MovieSummary>, ApiError> {
        Ok(self.events(filter, page).await?.map(MovieSummary::from))
    }

    /// Events (of the filter's kind, or any) that have upcoming on-sale shows
    /// matching the filter, memoised for `catalog.list_cache_ttl_ms`.
    pub async fn events(
        &self,
        filter: MovieFilter,
        page: &PageParams,
    ) -> Result<Page<EventSummary>, ApiError> {
        let limit = page.limit()?;
        let key = MovieListKey {
            filter: filter.clone(),
            limit,
            cursor: page.cursor.clone(),
        };
        let found = self
            .movie_lists
            .get_or_try_load(key, || async {
                event_page(self, &filter, page, limit)
                    .await
                    .map(std::sync::Arc::new)
            })
            .await?;
        Ok(Page {
            items: found.items.clone(),
            next_cursor: found.next_cursor.clone(),
        })
    }

    /// A movie (kind `movie`), or 404.
    pub async fn movie(&self, movie_id: Uuid) -> Result<MovieView, ApiError> {
        let m = self.movie_of_any_kind(movie_id).await?;
        if m.kind != EventKind::Movie {
            return Err(ApiError::NotFound(format!(
                "movie {movie_id} does not exist (it is a {} event: /v1/events/{movie_id})",
                m.kind
            )));
        }
        Ok(m)
    }

    /// A movie or an event of another kind, in the movie's shape (admins'
    /// `/v1/admin/movies` answer every kind), or 404.
    pub async fn movie_of_any_kind(&self, movie_id: Uuid) -> Result<MovieView, ApiError> {
        sqlx::query_as(
            "select id, kind, title, genres, cast_members as cast, duration_min, rating, language,
                    synopsis
               from movies where id = $1",
        )
        .bind(movie_id)
        .fetch_optional(&self.db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("movie {movie_id} does not exist")))
    }

    /// An event of any kind, or 404.
    pub async fn event(&self, event_id: Uuid) -> Result<EventView, ApiError> {
        sqlx::query_as(
            "select id, kind, title, genres, cast_members as performers, duration_min, rating,
                    language, synopsis
               from movies where id = $1",
        )
        .bind(event_id)
        .fetch_optional(&self.db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("event {event_id} does not exist")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_become_a_prefix_query_that_always_parses() {
        assert_eq!(prefix_tsquery("Avengers: End"), "'avengers':* & 'end':*");
        assert_eq!(prefix_tsquery("'&|!():*"), "");
    }
}
