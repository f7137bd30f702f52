//! Firing: N `POST /v1/bookings` with at most C in flight, while a watcher polls
//! PostgreSQL for the decisions of the accepted ones.

use crate::setup::BenchShow;
use hdrhistogram::Histogram;
use rand::Rng;
use rand::rngs::StdRng;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use uuid::Uuid;

/// One request, built before the clock starts.
pub struct Planned {
    pub user: usize,
    pub key: HeaderValue,
    pub body: Vec<u8>,
}

/// Builds `n` request bodies: a random show of `shows`, a random user of `users`,
/// a unique `Idempotency-Key`, and with `chosen_percent` % probability one random
/// chosen seat, otherwise `quantity` 1 to 3 (best available).
pub fn plan(
    rng: &mut StdRng,
    shows: &[BenchShow],
    users: usize,
    n: usize,
    run: &str,
    chosen_percent: u8,
    payment_method: Option<&str>,
) -> anyhow::Result<Vec<Planned>> {
    (0..n)
        .map(|i| {
            let show = &shows[rng.random_range(0..shows.len())];
            let mut body = if rng.random_range(0..100u8) < chosen_percent {
                let seat = &show.seats[rng.random_range(0..show.seats.len())];
                serde_json::json!({ "show_id": show.id, "seats": [seat] })
            } else {
                serde_json::json!({ "show_id": show.id, "quantity": rng.random_range(1..=3u8) })
            };
            if let Some(pm) = payment_method {
                body["payment_method"] = serde_json::json!(pm);
            }
            Ok(Planned {
                user: rng.random_range(0..users),
                key: HeaderValue::from_str(&format!("lg-{run}-{i}"))?,
                body: serde_json::to_vec(&body)?,
            })
        })
        .collect()
}

/// One `quantity: 1` request per show, to make the runners load every show before
/// the clock starts.
pub fn prime_plan(shows: &[BenchShow], users: usize, run: &str) -> anyhow::Result<Vec<Planned>> {
    shows
        .iter()
        .enumerate()
        .map(|(i, show)| {
            Ok(Planned {
                user: i % users,
                key: HeaderValue::from_str(&format!("lg-{run}-prime-{i}"))?,
                body: serde_json::to_vec(
                    &serde_json::json!({ "show_id": show.id, "quantity": 1 }),
                )?,
            })
        })
        .collect()
}

/// An HTTP client for many concurrent keep-alive connections to one host.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(600))
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// Opens `c` keep-alive connections before the clock starts, so that the measured
/// requests do not also measure a storm of TCP handshakes against the listen
/// backlog. Fast answers let the client reuse a connection instead of opening
/// another, so this sends rounds of `c` concurrent `GET /readyz` (each touches the
/// stores, which keeps connections busy) until this process holds `c` established
/// connections to the port of `base`, for at most `rounds` rounds. Returns the
/// connections held and the warm-up requests that failed.
pub async fn warm_up(
    client: &reqwest::Client,
    base: &str,
    c: usize,
    rounds: usize,
) -> (usize, usize) {
    let url = format!("{base}/readyz");
    let port = reqwest::Url::parse(base)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .unwrap_or(80);
    let mut failed = 0;
    let mut held = 0;
    for _ in 0..rounds {
        let mut set = JoinSet::new();
        for _ in 0..c {
            let client = client.clone();
            let url = url.clone();
            set.spawn(async move {
                match client.get(&url).send().await {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        r.bytes().await.is_err() || !ok
                    }
                    Err(_) => true,
                }
            });
        }
        while let Some(r) = set.join_next().await {
            if !matches!(r, Ok(false)) {
                failed += 1;
            }
        }
        held = established_to(port);
        if held >= c {
            break;
        }
    }
    (held, failed)
}

/// Established TCP connections of this process to remote `port` (from
/// `/proc/self/fd` and `/proc/net/tcp{,6}`).
pub fn established_to(port: u16) -> usize {
    let mine: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| {
                let link = std::fs::read_link(e.ok()?.path()).ok()?;
                let link = link.to_str()?;
                Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
            })
            .collect()
        })
        .unwrap_or_default();
    let want = format!("{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|text| {
            text.lines()
                .skip(1)
                .filter(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 9
                        && f[2].rsplit(':').next() == Some(want.as_str())
                        && f[3] == "01"
                        && mine.contains(f[9])
                })
                .count()
        })
        .sum()
}

/// An accepted booking, handed to the watcher as soon as its 202 arrives.
pub struct Accepted {
    pub id: Uuid,
    /// When its request was sent, from the start of the run.
    pub submitted: Duration,
}

/// What firing measured.
pub struct Fired {
    /// Latency of every `202` in microseconds (request sent -> body read).
    pub accept_us: Histogram<u64>,
    /// Latency of every other answer.
    pub other_us: Histogram<u64>,
    /// Answers by status code, or by transport error.
    pub statuses: BTreeMap<String, u64>,
    pub accepted: usize,
    /// From the start of the run to the last answer.
    pub elapsed: Duration,
    /// Most requests in flight at once.
    pub max_in_flight: usize,
}

struct Outcome {
    status: Result<u16, String>,
    latency_us: u64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

/// Fires every planned request with at most `c` in flight; each accepted booking
/// goes to `accepted` with its submit time (relative to `t0`). With a `rate`
/// (requests per second) request `i` is not sent before `t0 + i / rate` (an open
/// schedule, still capped at `c` in flight); without one, as fast as `c` allows.
#[allow(clippy::too_many_arguments)]
pub async fn fire(
    client: &reqwest::Client,
    base: &str,
    tokens: &[HeaderValue],
    planned: Vec<Planned>,
    c: usize,
    rate: Option<f64>,
    t0: Instant,
    accepted: mpsc::UnboundedSender<Accepted>,
) -> anyhow::Result<Fired> {
    let url: Arc<str> = format!("{base}/v1/bookings").into();
    let sem = Arc::new(Semaphore::new(c));
    let mut set = JoinSet::new();
    let mut out = Fired {
        accept_us: histogram(),
        other_us: histogram(),
        statuses: BTreeMap::new(),
        accepted: 0,
        elapsed: Duration::ZERO,
        max_in_flight: 0,
    };
    let record = |o: Outcome, out: &mut Fired| {
        let key = match o.status {
            Ok(202) => {
                out.accepted += 1;
                out.accept_us.saturating_record(o.latency_us);
                "202".to_owned()
            }
            Ok(s) => {
                out.other_us.saturating_record(o.latency_us);
                s.to_string()
            }
            Err(e) => {
                out.other_us.saturating_record(o.latency_us);
                e
            }
        };
        *out.statuses.entry(key).or_default() += 1;
    };
    let json = HeaderValue::from_static("application/json");
    for (i, p) in planned.into_iter().enumerate() {
        if let Some(rate) = rate {
            let due = t0 + Duration::from_secs_f64(i as f64 / rate);
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let permit = sem.clone().acquire_owned().await?;
        while let Some(done) = set.try_join_next() {
            record(done?, &mut out);
        }
        let client = client.clone();
        let url = url.clone();
        let token = tokens[p.user].clone();
        let json = json.clone();
        let tx = accepted.clone();
        set.spawn(async move {
            let sent = Instant::now();
            let res = client
                .post(&*url)
                .header(AUTHORIZATION, token)
                .header(CONTENT_TYPE, json)
                .header("idempotency-key", p.key)
                .body(p.body)
                .send()
                .await;
            let status = match res {
                Ok(r) => {
                    let code = r.status().as_u16();
                    match r.bytes().await {
                        Ok(body) => {
                            if code == 202 {
                                match accepted_id(&body) {
                                    Some(id) => {
                                        drop(tx.send(Accepted {
                                            id,
                                            submitted: sent.duration_since(t0),
                                        }));
                                        Ok(code)
                                    }
                                    None => Err("202 without a booking_id".to_owned()),
                                }
                            } else {
                                Ok(code)
                            }
                        }
                        Err(e) => Err(error_kind(&e)),
                    }
                }
                Err(e) => Err(error_kind(&e)),
            };
            let latency_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
            drop(permit);
            Outcome { status, latency_us }
        });
        out.max_in_flight = out.max_in_flight.max(set.len());
    }
    while let Some(done) = set.join_next().await {
        record(done?, &mut out);
    }
    out.elapsed = t0.elapsed();
    Ok(out)
}

fn accepted_id(body: &[u8]) -> Option<Uuid> {
    #[derive(serde::Deserialize)]
    struct Body {
        booking_id: Uuid,
    }
    serde_json::from_slice::<Body>(body)
        .ok()
        .map(|b| b.booking_id)
}

fn error_kind(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else if e.is_request() {
        "request"
    } else {
        "other"
    };
    format!("error:{kind}")
}
