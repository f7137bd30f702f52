//! Shows: a movie's show times and a show's details.

use super::Catalog;
use super::filters::ShowFilter;
use crate::pagination::{Page, PageParams};
use crate::problem::ApiError;
use crate::timefmt::rfc3339;
use contracts::Price;
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct TheaterRef {
    pub id: Uuid,
    pub name: String,
    pub city: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScreenRef {
    pub id: Uuid,
    pub name: String,
}

/// An upcoming show of a movie.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0193a000-0000-7000-8000-000000000002", "starts_at": "2026-11-25T18:30:00Z", "theater": {"id": "0193a000-0000-7000-8000-000000000003", "name": "PVR Phoenix", "city": "Mumbai"}, "screen": {"id": "0193a000-0000-7000-8000-000000000004", "name": "Screen 1"}, "prices": [{"seat_type": "regular", "amount": 20000, "currency": "INR"}]}))]
pub struct ShowSummary {
    pub id: Uuid,
    pub starts_at: String,
    pub theater: TheaterRef,
    pub screen: ScreenRef,
    pub prices: Vec<Price>,
}

/// id, starts_at, theater id, name, city, screen id, name, prices.
type ShowRow = (
    Uuid,
    OffsetDateTime,
    Uuid,
    String,
    String,
    Uuid,
    String,
    sqlx::types::Json<Vec<Price>>,
);

/// The columns of [`ShowRow`], from `shows s`, `screens sc`, `theaters t`.
const SHOW_COLUMNS: &str = "s.id, s.starts_at, t.id, t.name, t.city, sc.id, sc.name,
    (select coalesce(json_agg(json_build_object('seat_type', p.seat_type, 'amount', p.amount,
                                                'currency', p.currency) order by p.seat_type), '[]')
       from show_prices p where p.show_id = s.id)";

fn show_summary(r: ShowRow) -> ShowSummary {
    let (id, starts_at, theater, theater_name, city, screen, screen_name, prices) = r;
    ShowSummary {
        id,
        starts_at: rfc3339(starts_at),
        theater: TheaterRef {
            id: theater,
            name: theater_name,
            city,
        },
        screen: ScreenRef {
            id: screen,
            name: screen_name,
        },
        prices: prices.0,
    }
}

/// The sort key of the last show of a page: (starts_at in unix microseconds, id),
/// exact at PostgreSQL's precision.
#[derive(Debug, Serialize, Deserialize)]
struct StartCursor(i64, Uuid);
async fn movie_exists(db: &sqlx::PgPool, movie_id: Uuid) -> Result<bool, ApiError> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from movies where id = $1)")
            .bind(movie_id)
            .fetch_one(db)
            .await?,
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MovieRef {
    pub id: Uuid,
    pub title: String,
    pub duration_min: i32,
    pub rating: Option<String>,
    pub language: Option<String>,
}

/// A show with everything a buyer sees before picking seats.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0193a000-0000-7000-8000-000000000002", "starts_at": "2026-11-25T18:30:00Z", "ends_at": "2026-11-25T21:31:00Z", "status": "on_sale", "on_sale": true, "movie": {"id": "0193a000-0000-7000-8000-000000000001", "title": "Avengers: Endgame", "duration_min": 181, "rating": "UA", "language": "English"}, "theater": {"id": "0193a000-0000-7000-8000-000000000003", "name": "PVR Phoenix", "city": "Mumbai"}, "screen": {"id": "0193a000-0000-7000-8000-000000000004", "name": "Screen 1"}, "prices": [{"seat_type": "regular", "amount": 20000, "currency": "INR"}]}))]
pub struct ShowView {
    pub id: Uuid,
    pub starts_at: String,
    pub ends_at: String,
    /// `scheduled`, `on_sale` or `cancelled`.
    pub status: String,
    /// Takes bookings now: `on_sale` and not started.
    pub on_sale: bool,
    pub movie: MovieRef,
    pub theater: TheaterRef,
    pub screen: ScreenRef,
    pub prices: Vec<Price>,
}

/// [`ShowRow`], then ends_at, status, on sale now, movie id, title, duration,
/// rating, language.
type ShowDetailRow = (
    Uuid,
    OffsetDateTime,
    Uuid,
    String,
    String,
    Uuid,
    String,
    sqlx::types::Json<Vec<Price>>,
    OffsetDateTime,
    String,
    bool,
    Uuid,
    String,
    i32,
    Option<String>,
    Option<String>,
);
impl Catalog {
    /// A movie's upcoming on-sale shows matching the filter, by start time then id.
    pub async fn shows_of_movie(
        &self,
        movie_id: Uuid,
        filter: &ShowFilter,
        page: &PageParams,
    ) -> Result<Page<ShowSummary>, ApiError> {
        let limit = page.limit()?;
        let after = page.cursor::<StartCursor>()?;
        let mut b = QueryBuilder::new("select ");
        b.push(SHOW_COLUMNS).push(
            " from shows s join screens sc on sc.id = s.screen_id
                   join theaters t on t.id = sc.theater_id
              where s.movie_id = ",
        );
        b.push_bind(movie_id).push(" and");
        filter.push_conditions(&mut b);
        if let Some(StartCursor(us, id)) = after {
            b.push(" and (s.starts_at, s.id) > (")
                .push_bind(crate::pagination::from_unix_micros(us)?)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        b.push(" order by s.starts_at, s.id limit ")
            .push_bind(i64::from(limit) + 1);
        let rows: Vec<ShowRow> = b.build_query_as().fetch_all(&self.db).await?;
        if rows.is_empty() && !movie_exists(&self.db, movie_id).await? {
            return Err(ApiError::NotFound(format!(
                "movie {movie_id} does not exist"
            )));
        }
        let page = Page::from_rows(rows, limit, |r| {
            StartCursor(crate::pagination::unix_micros(r.1), r.0)
        });
        Ok(page.map(show_summary))
    }

    /// A show with its movie, theater, screen and prices, or 404.
    pub async fn show(&self, show_id: Uuid) -> Result<ShowView, ApiError> {
        show_view(&self.db, show_id).await
    }
}

/// A show with its movie, theater, screen and prices, or 404.
async fn show_view(db: &sqlx::PgPool, show_id: Uuid) -> Result<ShowView, ApiError> {
    let mut b = QueryBuilder::new("select ");
    b.push(SHOW_COLUMNS).push(
        ", s.ends_at, s.status, s.status = 'on_sale' and s.starts_at > now(),
                m.id, m.title, m.duration_min, m.rating, m.language
           from shows s join screens sc on sc.id = s.screen_id
                join theaters t on t.id = sc.theater_id
                join movies m on m.id = s.movie_id
          where s.id = ",
    );
    b.push_bind(show_id);
    let row: Option<ShowDetailRow> = b.build_query_as().fetch_optional(db).await?;
    let row = row.ok_or_else(|| ApiError::NotFound(format!("show {show_id} does not exist")))?;
    let (
        s0,
        s1,
        s2,
        s3,
        s4,
        s5,
        s6,
        s7,
        ends_at,
        status,
        on_sale,
        movie,
        title,
        duration,
        rating,
        language,
    ) = row;
    let summary = show_summary((s0, s1, s2, s3, s4, s5, s6, s7));
    Ok(ShowView {
        id: summary.id,
        starts_at: summary.starts_at,
        ends_at: rfc3339(ends_at),
        status,
        on_sale,
        movie: MovieRef {
            id: movie,
            title,
            duration_min: duration,
            rating,
            language,
        },
        theater: summary.theater,
        screen: summary.screen,
        prices: summary.prices,
    })
}
