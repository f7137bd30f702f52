//! The session generations (`users.auth_epoch`) of the accounts behind
//! authenticated requests, read from PostgreSQL in batches.
//!
//! Every authenticated request must see its account's generation as the database
//! has it when the request arrives (see [`crate::auth`]: no cache, no window). One
//! primary-key read per request did that at the cost of a round trip and a pooled
//! connection per request: under a burst of bookings the requests queued for the
//! pool and PostgreSQL answered thousands of one-row queries. Here one reader task
//! takes every question that arrived while its previous query ran and answers them
//! with one query (`where id = any(...)`), on one connection. Each answer still comes
//! from a read that began after its request arrived, so the guarantee is the same;
//! alone, a request waits for one query as before.

use crate::problem::ApiError;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Most accounts one query asks for.
const BATCH_MAX: usize = 512;
/// Questions that may wait for the reader; more wait for room (backpressure).
const QUEUE_MAX: usize = 4096;

struct Ask {
    user: Uuid,
    done: oneshot::Sender<Result<Option<i64>, ApiError>>,
}

/// The reader of session generations; cheap to clone.
#[derive(Clone)]
pub struct Epochs {
    tx: mpsc::Sender<Ask>,
}

impl Epochs {
    /// Starts the reader on `db`; it stops when the last handle is dropped.
    pub fn start(db: sqlx::PgPool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(read(db, rx));
        Self { tx }
    }

    /// The account's generation now (`None`: no such account).
    pub async fn current(&self, user: Uuid) -> Result<Option<i64>, ApiError> {
        let (done, answer) = oneshot::channel();
        let gone = || ApiError::Unavailable(anyhow::anyhow!("the session reader stopped"));
        self.tx.send(Ask { user, done }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn read(db: sqlx::PgPool, mut rx: mpsc::Receiver<Ask>) {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while rx.recv_many(&mut batch, BATCH_MAX).await > 0 {
        let ids: Vec<Uuid> = batch.iter().map(|a| a.user).collect();
        let rows: Result<Vec<(Uuid, i64)>, sqlx::Error> =
            sqlx::query_as("select id, auth_epoch from users where id = any($1)")
                .bind(&ids)
                .fetch_all(&db)
                .await;
        metrics::histogram!("ingress_auth_epoch_batch_size").record(batch.len() as f64);
        match rows {
            Ok(rows) => {
                let epochs: HashMap<Uuid, i64> = rows.into_iter().collect();
                for a in batch.drain(..) {
                    // The request may have gone (client disconnected): nothing to tell.
                    drop(a.done.send(Ok(epochs.get(&a.user).copied())));
                }
            }
            Err(e) => {
                let unavailable = platform::db::is_unavailable(&e);
                for a in batch.drain(..) {
                    let err = anyhow::anyhow!("reading the session generation: {e}");
                    drop(a.done.send(Err(if unavailable {
                        ApiError::Unavailable(err)
                    } else {
                        ApiError::Internal(err)
                    })));
                }
            }
        }
    }
}
