//! A short-lived, bounded, single-flight in-process cache of computed answers.
//!
//! Browsing is read-heavy and repetitive (the same city, day and first page for
//! everyone), so a catalog list computed once serves every identical request for a
//! second or two; concurrent misses on one key run the query once. A TTL of zero
//! turns it off.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

type Slot<V> = Arc<OnceCell<V>>;
/// Each key's slot with the time it was created.
type Slots<K, V> = Arc<Mutex<HashMap<K, (Instant, Slot<V>)>>>;

pub struct Memo<K, V> {
    ttl: Duration,
    max_entries: usize,
    slots: Slots<K, V>,
}

impl<K, V> Clone for Memo<K, V> {
    fn clone(&self) -> Self {
        Self {
            ttl: self.ttl,
            max_entries: self.max_entries,
            slots: self.slots.clone(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Memo<K, V> {
    /// At most `max_entries` answers, each trusted for `ttl`; past the bound the
    /// cache starts over (bounded memory, no bookkeeping per hit).
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries,
            slots: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The fresh answer for `key`, or the one `load` computes (once for every
    /// concurrent caller). Failures are not cached.
    pub async fn get_or_try_load<E, F, Fut>(&self, key: K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if self.ttl.is_zero() {
            return load().await;
        }
        let slot = self.slot(&key);
        match slot.get_or_try_init(load).await {
            Ok(v) => Ok(v.clone()),
            Err(e) => {
                self.slots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                Err(e)
            }
        }
    }

    fn slot(&self, key: &K) -> Slot<V> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some((at, slot)) = slots.get(key)
            && now.duration_since(*at) < self.ttl
        {
            return slot.clone();
        }
        if slots.len() >= self.max_entries {
            slots.clear();
        }
        let slot: Slot<V> = Arc::new(OnceCell::new());
        slots.insert(key.clone(), (now, slot.clone()));
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn concurrent_misses_load_once_and_failures_are_not_kept() {
        let memo: Memo<&str, u32> = Memo::new(Duration::from_secs(60), 10);
        let loads = AtomicU32::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok::<_, ()>(7)
        };
        let (a, b) = tokio::join!(
            memo.get_or_try_load("k", load),
            memo.get_or_try_load("k", load)
        );
        assert_eq!((a, b), (Ok(7), Ok(7)));
        assert_eq!(loads.load(Ordering::SeqCst), 1);

        let failed = memo
            .get_or_try_load("e", || async { Err::<u32, _>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        let healed = memo
            .get_or_try_load("e", || async { Ok::<_, &str>(8) })
            .await;
        assert_eq!(healed, Ok(8));
    }

    #[tokio::test]
    async fn a_zero_ttl_always_loads() {
        let memo: Memo<u8, u8> = Memo::new(Duration::ZERO, 10);
        assert_eq!(
            memo.get_or_try_load(1, || async { Ok::<_, ()>(1) }).await,
            Ok(1)
        );
        assert_eq!(
            memo.get_or_try_load(1, || async { Ok::<_, ()>(2) }).await,
            Ok(2)
        );
    }
}
