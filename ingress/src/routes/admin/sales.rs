//! A show's sales: seats sold, held and free by type, and revenue.

use super::*;

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct SeatCounts {
    pub capacity: u32,
    /// Seats of confirmed bookings.
    pub sold: u32,
    /// Seats of held or payment-pending bookings.
    pub held: u32,
    pub free: u32,
    /// Seats the layout never sells.
    pub blocked: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TypeSales {
    pub seat_type: String,
    #[serde(flatten)]
    pub seats: SeatCounts,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revenue {
    /// Minor units: the amounts of confirmed bookings.
    pub amount: i64,
    pub currency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Sales {
    pub show_id: Uuid,
    #[serde(flatten)]
    pub seats: SeatCounts,
    pub revenue: Revenue,
    pub by_seat_type: Vec<TypeSales>,
}

impl SeatCounts {
    fn add(&mut self, state: Option<BookingStatus>, blocked: bool) {
        self.capacity += 1;
        match state {
            Some(BookingStatus::Confirmed) => self.sold += 1,
            Some(_) => self.held += 1,
            None if blocked => self.blocked += 1,
            None => self.free += 1,
        }
    }
}

/// A show's sold, held, free and blocked seats, in all and by seat type, and its
/// revenue so far.
#[utoipa::path(get, path = "/v1/admin/shows/{show_id}/sales", tag = "admin", security(("bearer" = [])),
    params(("show_id" = Uuid, Path, description = "The show id")),
    responses((status = 200, description = "The sales", body = Sales)))]
pub async fn sales(
    State(app): State<AppState>,
    access: Access,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Sales>, ApiError> {
    access.show(&app.db, id).await?;
    let show = platform::catalog::load_show(&app.db, contracts::ShowId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("show {id} does not exist")))?;
    let live: HashMap<String, BookingStatus> = sqlx::query_as::<_, (String, String)>(
        "select bs.seat_id, b.status from booking_seats bs join bookings b on b.id = bs.booking_id
          where bs.show_id = $1 and bs.released_at is null",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await?
    .into_iter()
    .map(|(seat, status)| Ok((seat, platform::db::parse_text(&status)?)))
    .collect::<Result<_, sqlx::Error>>()?;
    let (amount, currency): (Option<i64>, Option<String>) = sqlx::query_as(
        "select sum(amount)::bigint, max(currency) from bookings where show_id = $1 and status = 'confirmed'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await?;
    let mut all = SeatCounts::default();
    let mut by_type: BTreeMap<String, SeatCounts> = BTreeMap::new();
    for (seat, s) in show.layout.seats() {
        let state = live.get(seat.as_str()).copied();
        all.add(state, s.blocked);
        by_type
            .entry(s.seat_type.clone())
            .or_default()
            .add(state, s.blocked);
    }
    Ok(axum::Json(Sales {
        show_id: id,
        seats: all,
        revenue: Revenue {
            amount: amount.unwrap_or(0),
            currency: currency.or_else(|| show.prices.first().map(|p| p.currency.clone())),
        },
        by_seat_type: by_type
            .into_iter()
            .map(|(seat_type, seats)| TypeSales { seat_type, seats })
            .collect(),
    }))
}
