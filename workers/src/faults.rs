//! The fault-injection test hook: `GET`/`POST /faults` on the metrics listener, served
//! only with `workers.fault_injection` (which `Settings::load` refuses in
//! production). The end-to-end harness runs the real `workers` binary and arms its
//! failures through it; the counters themselves are [`crate::runner::Faults`].

use crate::runner::Faults;
use axum::extract::State;
use axum::{Json, Router};
use contracts::faults::FaultCounts;
use std::sync::Arc;

/// `GET /faults` (the counts still to come) and `POST /faults` (adds its counts,
/// answers the new ones).
pub fn router(faults: Arc<Faults>) -> Router {
    Router::new()
        .route("/faults", axum::routing::get(left).post(arm))
        .with_state(faults)
}

async fn left(State(faults): State<Arc<Faults>>) -> Json<FaultCounts> {
    Json(faults.left())
}

async fn arm(
    State(faults): State<Arc<Faults>>,
    Json(more): Json<FaultCounts>,
) -> Json<FaultCounts> {
    faults.add(more);
    Json(faults.left())
}
