//! Recording a send, and the window in which an email can go out twice.
//!
//! A send is claimed (`sent_messages`, status `sending`, with a lease), made, then
//! recorded (`sent`). SMTP and PostgreSQL cannot commit together, so there is a
//! window between the send and its record: if the record is lost, the event is
//! delivered again after the lease and sent again. The guarantee is therefore
//! **at least once, with a stable `Message-ID`** (`<event id@notifier...>`, the
//! same on every send of one event) so that mail systems and clients that dedupe by
//! Message-ID show one message. This module makes the window small and measured:
//!
//! - **PostgreSQL down after the send** (the common case, measured at 12-27
//!   duplicates per outage before): the record is retried in-process with backoff
//!   for as long as the claim's lease lasts (about 105 s with the default settings;
//!   nobody else may claim the event meanwhile), and each retry is counted in
//!   `notifier_record_retries_total`;
//! - **still down after that**: the send is remembered in this process
//!   ([`Unrecorded`]); the redelivered event is then recorded, not sent again
//!   (`notifier_sends_total{outcome="recorded_late"}`); counted in
//!   `notifier_unrecorded_sends_total`;
//! - what remains: the process dies (or its memory of unrecorded sends is full)
//!   between a send and its record; the event is sent again, with the same
//!   Message-ID, after its lease. `notifier_record_seconds` (send done to record
//!   done) shows how wide the window was in practice.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Where a test makes the notifier fail: the record step fails this many times.
#[derive(Debug, Default)]
pub struct Faults {
    pub fail_record: AtomicU32,
}

impl Faults {
    /// Whether this record attempt is to fail (and counts it).
    pub fn take_record_failure(&self) -> bool {
        self.fail_record
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Most sends remembered as unrecorded (about 100 bytes each).
const UNRECORDED_MAX: usize = 100_000;

/// Sends this process made and could not record: event id to recipient address.
#[derive(Debug, Default)]
pub struct Unrecorded {
    sends: Mutex<HashMap<Uuid, String>>,
}

impl Unrecorded {
    /// Remembers a send (unless full: then the window stays open for it).
    pub fn insert(&self, event: Uuid, recipient: &str) {
        if let Ok(mut m) = self.sends.lock()
            && m.len() < UNRECORDED_MAX
        {
            m.insert(event, recipient.to_owned());
        }
    }

    pub fn get(&self, event: Uuid) -> Option<String> {
        self.sends.lock().ok()?.get(&event).cloned()
    }

    pub fn remove(&self, event: Uuid) {
        if let Ok(mut m) = self.sends.lock() {
            m.remove(&event);
        }
    }
}

/// First pause between record attempts; doubled up to [`RECORD_RETRY_MAX`].
const RECORD_RETRY_INITIAL: Duration = Duration::from_millis(100);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(2);

/// Runs `attempt` until it succeeds or the next pause would pass `deadline`;
/// counts each retry. Returns the last error.
pub async fn until_recorded<F, Fut>(deadline: Instant, mut attempt: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut pause = RECORD_RETRY_INITIAL;
    loop {
        match attempt().await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() + pause < deadline => {
                metrics::counter!("notifier_record_retries_total").increment(1);
                tracing::warn!(error = %e, retry_in = ?pause, "recording a sent email failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RECORD_RETRY_MAX);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_record_is_retried_until_it_succeeds_within_the_deadline() {
        let mut failures = 3;
        let res = until_recorded(Instant::now() + Duration::from_secs(10), || {
            let fail = failures > 0;
            failures -= 1;
            async move { if fail { Err("down".to_owned()) } else { Ok(()) } }
        })
        .await;
        assert_eq!(res, Ok(()));
        let res = until_recorded(Instant::now() + Duration::from_millis(250), || async {
            Err::<(), _>("still down".to_owned())
        })
        .await;
        assert_eq!(res, Err("still down".to_owned()));
    }

    #[test]
    fn unrecorded_sends_are_remembered_and_forgotten() {
        let u = Unrecorded::default();
        let e = Uuid::new_v4();
        assert_eq!(u.get(e), None);
        u.insert(e, "a@example.com");
        assert_eq!(u.get(e).as_deref(), Some("a@example.com"));
        u.remove(e);
        assert_eq!(u.get(e), None);
        let f = Faults::default();
        f.fail_record.store(1, Ordering::SeqCst);
        assert!(f.take_record_failure());
        assert!(!f.take_record_failure());
    }
}
