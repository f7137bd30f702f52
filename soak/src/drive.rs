//! The customers: virtual users that book (a good card, a declined one, or no
//! payment), poll their booking until it settles, and cancel some confirmed ones,
//! retrying every unanswered or failed request with the same key as a real client
//! would. Every answer is logged with its time, and every `404` of a booking that
//! was answered `202`.

use crate::setup::BenchShow;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Book,
    Get,
    Cancel,
}

/// One answer: when (seconds from the start of the load), to what, which status
/// (0: no answer, a transport error).
#[derive(Clone, Debug)]
pub struct Obs {
    pub at: f64,
    pub op: Op,
    pub status: u16,
}

#[derive(Clone, Debug)]
pub struct Booking {
    pub method: Option<&'static str>,
    pub accepted: f64,
    /// First time a poll saw it decided (not `queued`).
    pub decided: Option<f64>,
    pub last_status: Option<String>,
    pub cancel_requested: bool,
}

#[derive(Default)]
pub struct Log {
    pub obs: Vec<Obs>,
    pub bookings: HashMap<Uuid, Booking>,
    /// `404` answers to a GET of a booking answered `202`: (time, booking).
    pub not_found: Vec<(f64, Uuid)>,
    /// Booking requests never answered `202` or a final refusal, after retries.
    pub gave_up: usize,
}

pub struct Load {
    pub base: String,
    pub client: reqwest::Client,
    pub tokens: Vec<HeaderValue>,
    pub shows: Vec<BenchShow>,
    pub t0: Instant,
    /// No new booking after this (seconds from t0); polls go on until `stop`.
    pub until: f64,
    pub stop: f64,
    pub seed: u64,
    pub log: Arc<Mutex<Log>>,
}

/// Statuses after which nothing happens unless someone acts.
const SETTLED: [&str; 6] = [
    "confirmed",
    "rejected",
    "expired",
    "failed",
    "refunded",
    "released",
];

fn retryable(status: u16) -> bool {
    status == 0 || status == 429 || status >= 500
}

impl Load {
    fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    fn record(&self, op: Op, status: u16) {
        let at = self.now();
        self.log.lock().unwrap().obs.push(Obs { at, op, status });
    }

    async fn call(&self, req: reqwest::RequestBuilder, op: Op) -> (u16, Value) {
        let (status, body) = match req.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                match r.bytes().await {
                    Ok(b) => (s, serde_json::from_slice(&b).unwrap_or(Value::Null)),
                    Err(_) => (0, Value::Null),
                }
            }
            Err(_) => (0, Value::Null),
        };
        self.record(op, status);
        (status, body)
    }

    /// POSTs until an answer that is not worth retrying, or `stop`.
    async fn post(
        &self,
        path: &str,
        token: &HeaderValue,
        key: &str,
        body: &Value,
        op: Op,
    ) -> (u16, Value) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let req = self
                .client
                .post(format!("{}{path}", self.base))
                .header(AUTHORIZATION, token.clone())
                .header("idempotency-key", key)
                .json(body);
            let (s, v) = self.call(req, op).await;
            if !retryable(s) || self.now() > self.stop {
                return (s, v);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Polls the booking until it is settled (for its client), or `stop`.
    async fn poll(
        &self,
        id: Uuid,
        token: &HeaderValue,
        until_status: Option<&str>,
    ) -> Option<Value> {
        loop {
            let req = self
                .client
                .get(format!("{}/v1/bookings/{id}", self.base))
                .header(AUTHORIZATION, token.clone());
            let (s, v) = self.call(req, Op::Get).await;
            let now = self.now();
            if s == 404 {
                self.log.lock().unwrap().not_found.push((now, id));
            }
            if s == 200 {
                let status = v["status"].as_str().unwrap_or("").to_owned();
                let done = {
                    let mut log = self.log.lock().unwrap();
                    let b = log.bookings.get_mut(&id).expect("recorded at 202");
                    if status != "queued" && b.decided.is_none() {
                        b.decided = Some(now);
                    }
                    b.last_status = Some(status.clone());
                    let pay = v["payment"]["status"].as_str();
                    match until_status {
                        Some(want) => status == want,
                        None => {
                            SETTLED.contains(&status.as_str())
                                || (status == "held"
                                    && (b.method.is_none()
                                        || matches!(pay, Some("failed" | "canceled"))))
                        }
                    }
                };
                if done {
                    return Some(v);
                }
            }
            if now > self.stop {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }

    /// One virtual user: books, waits, sometimes cancels, until `until`.
    pub async fn user(self: Arc<Self>, vu: usize) {
        let mut rng = StdRng::seed_from_u64(self.seed.wrapping_mul(1000).wrapping_add(vu as u64));
        let token = self.tokens[vu].clone();
        let mut n = 0u64;
        while self.now() < self.until {
            n += 1;
            let show = &self.shows[rng.random_range(0..self.shows.len())];
            let mut body = if rng.random_range(0..100) < 40 {
                let seat = &show.seats[rng.random_range(0..show.seats.len())];
                json!({"show_id": show.id, "seats": [seat]})
            } else {
                json!({"show_id": show.id, "quantity": rng.random_range(1..=2u8)})
            };
            let method = match rng.random_range(0..100) {
                0..65 => Some("pm_card_ok"),
                65..85 => Some("pm_card_declined"),
                _ => None,
            };
            if let Some(m) = method {
                body["payment_method"] = json!(m);
            }
            let cancel = rng.random_range(0..100) < 25;
            let think = Duration::from_millis(rng.random_range(0..200));
            let key = format!("soak-{}-{vu}-{n}", self.seed);
            let (s, v) = self
                .post("/v1/bookings", &token, &key, &body, Op::Book)
                .await;
            let id = v["booking_id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok());
            match (s, id) {
                (202, Some(id)) => {
                    let at = self.now();
                    self.log
                        .lock()
                        .unwrap()
                        .bookings
                        .entry(id)
                        .or_insert(Booking {
                            method,
                            accepted: at,
                            decided: None,
                            last_status: None,
                            cancel_requested: false,
                        });
                    let settled = self.poll(id, &token, None).await;
                    let confirmed = settled.is_some_and(|v| v["status"] == "confirmed");
                    if confirmed && cancel {
                        let path = format!("/v1/bookings/{id}/cancel");
                        let (s, _) = self.post(&path, &token, &key, &json!({}), Op::Cancel).await;
                        if s == 202 {
                            self.log
                                .lock()
                                .unwrap()
                                .bookings
                                .get_mut(&id)
                                .expect("recorded")
                                .cancel_requested = true;
                            self.poll(id, &token, Some("refunded")).await;
                        }
                    }
                }
                (s, _) if retryable(s) => self.log.lock().unwrap().gave_up += 1,
                _ => {}
            }
            tokio::time::sleep(think).await;
        }
    }
}

/// Runs `users` virtual users to the end.
pub async fn run(load: Load, users: usize) -> Arc<Mutex<Log>> {
    let log = load.log.clone();
    let load = Arc::new(load);
    let tasks: Vec<_> = (0..users)
        .map(|vu| tokio::spawn(load.clone().user(vu)))
        .collect();
    for t in tasks {
        drop(t.await);
    }
    log
}
