//! The fault-injection test hook: `GET`/`POST /faults` on the metrics listener, served
//! only with `workers.fault_injection` (which `Settings::load` refuses in
//! production). The end-to-end harness runs the real `workers` binary and arms its
//! failures through it; the counters themselves are [`crate::runner::Faults`].

use crate::runner::Faults;
use axum::extract::State;
use axum::{Json, Router};
use contracts::faults::FaultCounts;
use std::sync::Arc;

/// The metrics listener's own routes of this process: the hook when `enabled`
/// (`workers.fault_injection`), none otherwise (`/faults` is then a 404).
pub fn routes(enabled: bool, faults: Arc<Faults>) -> Router {
    if enabled {
        router(faults)
    } else {
        Router::new()
    }
}

/// `GET /faults` (the counts still to come) and `POST /faults` (adds its counts,
/// answers the new ones).
fn router(faults: Arc<Faults>) -> Router {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    fn post(body: &str) -> Request<Body> {
        Request::post("/faults")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    #[tokio::test]
    async fn without_fault_injection_there_is_no_faults_route() {
        let faults = Arc::new(Faults::default());
        let res = routes(false, faults.clone())
            .oneshot(post(r#"{"crash_before_commit": 3}"#))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(faults.left(), FaultCounts::default());
    }

    #[tokio::test]
    async fn posted_counts_are_added_and_read_back() {
        let faults = Arc::new(Faults::default());
        for _ in 0..2 {
            let res = routes(true, faults.clone())
                .oneshot(post(
                    r#"{"crash_after_commit": 1, "notifier_fail_record": 2}"#,
                ))
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
        }
        let want = FaultCounts {
            crash_after_commit: 2,
            notifier_fail_record: 4,
            ..FaultCounts::default()
        };
        assert_eq!(faults.left(), want);
        assert!(Faults::take(&faults.crash_after_commit));
        let res = routes(true, faults.clone())
            .oneshot(Request::get("/faults").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        let left: FaultCounts = serde_json::from_slice(&body).unwrap();
        assert_eq!(left.crash_after_commit, 1);
        // An unknown kind is refused, not ignored (a typo must not arm nothing).
        let res = routes(true, faults)
            .oneshot(post(r#"{"crash_somewhere": 1}"#))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
