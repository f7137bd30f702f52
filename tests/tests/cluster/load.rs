//! A booking load like real clients make it: a fixed number of requests in flight,
//! each retried with its own idempotency key (so the same booking) until it is
//! answered 202, every refusal or connection error counted.

use contracts::ShowId;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::{POLL, TestSystem, poll};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A client's pause before it sends a refused request again.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// How long a client keeps retrying one request before it gives up.
const GIVE_UP: Duration = Duration::from_secs(90);

/// One logical request.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub booking: Option<uuid::Uuid>,
    /// Answers other than 202 (and connection errors) before the last one.
    pub errors: usize,
    /// When it was answered 202.
    pub at: Option<Instant>,
    /// When each error was seen.
    pub error_times: Vec<Instant>,
    /// What the last error was (a status and body, or the connection error).
    pub last_error: Option<String>,
}

impl Outcome {
    pub fn accepted(&self) -> Option<uuid::Uuid> {
        self.booking
    }
}

pub struct Load {
    shows: Vec<ShowId>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl Load {
    /// Starts `clients` clients (20 customers) booking one seat at a time over `shows`.
    pub async fn start(sys: &TestSystem, shows: Vec<ShowId>, clients: usize) -> Self {
        Self::start_at(sys, &sys.base_url, shows, clients).await
    }

    /// As [`Load::start`], through `base_url` (a load balancer) instead of the
    /// system's ingress.
    pub async fn start_at(
        sys: &TestSystem,
        base_url: &str,
        shows: Vec<ShowId>,
        clients: usize,
    ) -> Self {
        let mut tokens = vec![];
        for i in 0..20 {
            tokens.push(sys.customer(i).await.1);
        }
        let tokens = Arc::new(tokens);
        let outcomes = Arc::new(Mutex::new(vec![]));
        let stop = CancellationToken::new();
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..clients {
            let (http, url) = (sys.http.clone(), format!("{base_url}/v1/bookings"));
            let (tokens, shows, outcomes, stop, next) = (
                tokens.clone(),
                shows.clone(),
                outcomes.clone(),
                stop.clone(),
                next.clone(),
            );
            tasks.spawn(async move {
                while !stop.is_cancelled() {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let body =
                        json!({"show_id": shows[i % shows.len()].to_string(), "quantity": 1});
                    let out = request(
                        &http,
                        &url,
                        &tokens[i % tokens.len()],
                        &format!("cl-{i}"),
                        &body,
                    )
                    .await;
                    outcomes.lock().unwrap().push(out);
                }
            });
        }
        Self {
            shows,
            outcomes,
            stop,
            tasks,
        }
    }

    /// Requests answered 202 so far.
    pub fn accepted(&self) -> usize {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.booking.is_some())
            .count()
    }

    /// Bookings answered 202 after `since`.
    pub fn accepted_since(&self, since: Instant) -> Vec<uuid::Uuid> {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.at.is_some_and(|at| at > since))
            .filter_map(|o| o.booking)
            .collect()
    }

    /// Errors clients saw after `since`.
    pub fn errors_since(&self, since: Instant) -> usize {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .flat_map(|o| &o.error_times)
            .filter(|t| **t > since)
            .count()
    }

    /// The load's shows whose commands go to `queue`.
    pub fn shows_on(&self, sys: &TestSystem, queue: &str) -> Vec<uuid::Uuid> {
        let topo = sys.settings.topology();
        self.shows
            .iter()
            .filter(|s| topo.partition_queue(topo.partition_of(**s)) == queue)
            .map(|s| s.0)
            .collect()
    }

    /// Waits until `n` requests were answered 202.
    pub async fn wait_accepted(&self, n: usize, max: Duration) {
        let reached = poll(max, POLL, || async {
            let have = self.accepted();
            if have >= n { Ok(()) } else { Err(have) }
        })
        .await;
        if let Err(have) = reached {
            let last = self
                .outcomes
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find_map(|o| o.last_error.clone());
            panic!(
                "only {have} of {n} requests accepted within {max:?}; last error seen: {last:?}"
            );
        }
    }

    /// Stops sending new requests, lets every client finish its current one, and
    /// returns every outcome.
    pub async fn finish(mut self) -> Vec<Outcome> {
        self.stop.cancel();
        while let Some(r) = self.tasks.join_next().await {
            r.expect("a client task panicked");
        }
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

/// Sends one booking until it is answered 202 (or [`GIVE_UP`]).
async fn request(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    key: &str,
    body: &serde_json::Value,
) -> Outcome {
    let out = std::sync::Mutex::new(Outcome {
        booking: None,
        errors: 0,
        at: None,
        error_times: vec![],
        last_error: None,
    });
    let booked = tests::poll(GIVE_UP, RETRY_PAUSE, || async {
        let res = http
            .post(url)
            .bearer_auth(token)
            .header("idempotency-key", key)
            .timeout(Duration::from_secs(15))
            .json(body)
            .send()
            .await;
        let answer = match res {
            Ok(res) => {
                let status = res.status().as_u16();
                let b = res.json::<serde_json::Value>().await.unwrap_or_default();
                match b["booking_id"].as_str().and_then(|s| s.parse().ok()) {
                    Some(id) if status == 202 => Ok(id),
                    _ => Err(format!("{status} {b}")),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = &answer {
            let mut o = out.lock().unwrap();
            o.errors += 1;
            o.error_times.push(Instant::now());
            o.last_error = Some(e.clone());
        }
        answer
    })
    .await;
    let mut out = out.into_inner().unwrap();
    if let Ok(id) = booked {
        out.booking = Some(id);
        out.at = Some(Instant::now());
    }
    out
}

/// Checks the end of a load: every request was answered 202 in the end (clients
/// retry), the decided bookings are exactly the accepted ones, each decided once, and
/// money and seats agree (reconciliation, which also finds an oversold seat). Returns
/// the accepted bookings.
pub async fn assert_decided_exactly_once(
    sys: &TestSystem,
    outcomes: &[Outcome],
) -> Vec<uuid::Uuid> {
    let accepted: Vec<uuid::Uuid> = outcomes.iter().filter_map(Outcome::accepted).collect();
    let gave_up = outcomes.iter().filter(|o| o.accepted().is_none()).count();
    sys.wait_decided(&accepted, Duration::from_secs(120)).await;
    let decisions: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "select booking_id, count(*) from booking_events
          where type in ('booking.held', 'booking.rejected') group by 1",
    )
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    assert!(
        decisions.iter().all(|(_, n)| *n == 1),
        "a booking decided twice"
    );
    let mut decided: Vec<uuid::Uuid> = decisions.into_iter().map(|(id, _)| id).collect();
    let mut want = accepted.clone();
    decided.sort();
    want.sort();
    assert_eq!(
        decided, want,
        "the decided bookings are exactly the accepted ones"
    );
    assert_eq!(
        gave_up, 0,
        "every request was accepted in the end (clients retry)"
    );
    let report = ops::reconcile::reconcile(&sys.pool).await.unwrap();
    assert!(report.ok, "{:#?}", report.problems);
    accepted
}
