//! Catalog fixtures of a test: shows, movies and screenings written straight to the
//! test's database (the admin API has its own tests).

use crate::TestSystem;
use contracts::ShowId;

impl TestSystem {
    /// A show of `rows` x `per_row` regular seats, on sale, starting tomorrow.
    pub async fn show(&self, rows: usize, per_row: u16) -> ShowId {
        self.show_with_id(ShowId::new_v7(), rows, per_row).await
    }

    /// Like [`TestSystem::show`], with the id chosen by the test.
    pub async fn show_with_id(&self, show: ShowId, rows: usize, per_row: u16) -> ShowId {
        let tomorrow = time::OffsetDateTime::now_utc() + time::Duration::days(1);
        self.show_starting_at(show, rows, per_row, tomorrow).await
    }

    /// Like [`TestSystem::show_with_id`], starting at `starts_at`.
    pub async fn show_starting_at(
        &self,
        show: ShowId,
        rows: usize,
        per_row: u16,
        starts_at: time::OffsetDateTime,
    ) -> ShowId {
        seed::create_show(
            &self.pool,
            &seed::NewShow {
                show_id: show,
                layout: contracts::ScreenLayout::grid(rows, per_row, "regular"),
                prices: vec![contracts::Price {
                    seat_type: "regular".into(),
                    amount: 25_000,
                    currency: "INR".into(),
                }],
                starts_at,
                city: "Pune".into(),
                theater: "Test Theater".into(),
                movie: "Test Movie".into(),
            },
        )
        .await
        .expect("create show");
        show
    }

    /// A movie in the catalog (with no show yet); returns its id.
    pub async fn movie(&self, title: &str, genres: &[&str], cast: &[&str]) -> uuid::Uuid {
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "insert into movies (id, title, genres, cast_members, duration_min, rating, language, synopsis)
             values ($1, $2, $3, $4, 150, 'UA', 'English', 'A test movie.')",
        )
        .bind(id)
        .bind(title)
        .bind(genres)
        .bind(cast)
        .execute(&self.pool)
        .await
        .expect("insert movie");
        id
    }

    /// An on-sale show of `movie` (3 x 4 regular seats, its own theater and screen)
    /// in `city`, starting at `starts_at`.
    pub async fn screening(
        &self,
        movie: uuid::Uuid,
        city: &str,
        starts_at: time::OffsetDateTime,
    ) -> ShowId {
        let show = ShowId::new_v7();
        self.show_of_movie(
            movie,
            &seed::NewShow {
                show_id: show,
                layout: contracts::ScreenLayout::grid(3, 4, "regular"),
                prices: vec![contracts::Price {
                    seat_type: "regular".into(),
                    amount: 25_000,
                    currency: "INR".into(),
                }],
                starts_at,
                city: city.into(),
                theater: format!("{city} Cinema"),
                movie: "placeholder".into(),
            },
        )
        .await
    }

    /// Creates `new` (its own theater and screen) as a show of the existing `movie`.
    pub async fn show_of_movie(&self, movie: uuid::Uuid, new: &seed::NewShow) -> ShowId {
        let show = seed::create_show(&self.pool, new)
            .await
            .expect("create show");
        // The seed makes one movie per show: move the show to `movie`, drop the stand-in.
        let placeholder: uuid::Uuid = sqlx::query_scalar(
            "update shows s set movie_id = $2 from shows old
              where s.id = $1 and old.id = s.id returning old.movie_id",
        )
        .bind(show.0)
        .bind(movie)
        .fetch_one(&self.pool)
        .await
        .expect("move show");
        sqlx::query("delete from movies where id = $1")
            .bind(placeholder)
            .execute(&self.pool)
            .await
            .expect("drop placeholder movie");
        show
    }

    /// Waits until the booking is held again after a declined payment.
    pub async fn wait_declined(&self, token: &str, id: &str) -> serde_json::Value {
        // The sequencer's own record of the decline first: the saga marks the attempt
        // failed before the sequencer has applied it, so a test that means "held again"
        // (not "payment failed") waits for the event. Paying again in between is taken
        // (journey::paying_again_after_a_decline_is_taken_before_the_booking_reads_held_again).
        self.eventually(
            crate::BOOKING_WAIT,
            "the sequencer recorded the decline",
            || async {
                sqlx::query_scalar::<_, bool>(
                    "select exists (select 1 from booking_events
                                     where booking_id = $1::uuid and type = 'booking.payment_declined')",
                )
                .bind(id)
                .fetch_one(&self.pool)
                .await
                .unwrap()
            },
        )
        .await;
        self.booking_until(token, id, "declined", |b| {
            b["status"] == "held" && b["payment"]["status"] == "failed"
        })
        .await
    }
}
