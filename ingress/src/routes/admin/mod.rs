//! Theater admins schedule the catalog (API.md, "Admin"), role `admin` only (one
//! route layer checks it for every handler here): theaters, their screens (seat
//! layouts), seat blocks from a date on, movies and events of other kinds, shows, a
//! show's sales, and sales reports, one file each.
//!
//! Every handler takes an [`Access`] and checks the theater scope of what it touches
//! (`403` for another theater's theater, screen or show; lists filtered to the scope);
//! theaters, movies and events are created and edited only by platform admins,
//! because they belong to no one theater (see [`crate::scope`]).
//!
//! What a booking depends on is frozen once the show has one: a show's start and
//! prices, and its screen's layout, can change only while none of the screen's (or
//! the show's) live shows has a booking of any status. The sequencer loads a show's
//! layout and prices once and keeps them in memory, so changing them under existing
//! bookings would silently re-price or re-map seats; an admin cancels the show instead.
//!
//! Overlapping shows on a screen (the cleaning buffer included) are refused with a 409
//! naming the other show; the database's exclusion constraint `shows_no_overlap`
//! refuses what two concurrent requests might both have checked.

mod blocks;
mod events;
mod movies;
mod recurring;
mod reports;
mod sales;
mod screens;
mod shows;
mod theaters;

use blocks::*;
use events::*;
use movies::*;
use recurring::*;
use reports::*;
use sales::*;
use screens::*;
use shows::*;
use theaters::*;

use crate::catalog::{MovieView, ShowView};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::{Page, PageParams};
use crate::problem::ApiError;
use crate::scope::Access;
use crate::state::AppState;
use crate::timefmt::rfc3339;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contracts::{BookingStatus, Price, ScreenLayout, ShowStatus};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

const MAX_NAME_CHARS: usize = 200;
const MAX_ADDRESS_CHARS: usize = 500;
const MAX_SYNOPSIS_CHARS: usize = 5000;
const MAX_LIST_ITEMS: usize = 50;
const MAX_DURATION_MIN: i32 = 600;
const MAX_PRICE: i64 = 1_000_000_000;
/// How far ahead a show may be scheduled.
const MAX_DAYS_AHEAD: i64 = 730;

// A bounded, trimmed, non-empty visible text (`crate::text::clean`).
use crate::text::clean as text;

fn texts(field: &str, raw: &[String], max_each: usize) -> Result<Vec<String>, ApiError> {
    if raw.len() > MAX_LIST_ITEMS {
        return Err(ApiError::Validation(format!(
            "{field} holds at most {MAX_LIST_ITEMS} items"
        )));
    }
    raw.iter().map(|v| text(field, v, max_each)).collect()
}

fn optional_text(field: &str, raw: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    raw.map(|v| text(field, v, max)).transpose()
}

/// Maps the constraint violations an admin write can meet to answers.
fn db_conflict(e: sqlx::Error, what: &str) -> ApiError {
    match e.as_database_error().and_then(|d| d.code()).as_deref() {
        Some("23505") => ApiError::Conflict(format!("{what} already exists")),
        Some("23P01") => ApiError::Conflict(
            "the screen already has a show at that time (cleaning buffer included)".into(),
        ),
        Some("23503") => ApiError::NotFound(format!("{what}: a referenced row does not exist")),
        _ => e.into(),
    }
}

/// The sort key of an id-ordered list (ids are UUIDv7: creation order).
#[derive(Debug, Serialize, Deserialize)]
struct IdCursor(Uuid);

/// `/v1/admin/...`
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_theater, list_theaters))
        .routes(routes!(get_theater, update_theater))
        .routes(routes!(create_screen, list_screens))
        .routes(routes!(get_screen))
        .routes(routes!(replace_layout))
        .routes(routes!(create_block, list_blocks))
        .routes(routes!(create_movie, list_movies))
        .routes(routes!(create_event))
        .routes(routes!(get_movie, update_movie))
        .routes(routes!(create_show, list_shows))
        .routes(routes!(create_recurring))
        .routes(routes!(get_show, update_show))
        .routes(routes!(sales))
        .routes(routes!(cancel_show))
        .routes(routes!(sales_report))
        .route_layer(axum::middleware::from_fn(crate::auth::layer::admins))
}
