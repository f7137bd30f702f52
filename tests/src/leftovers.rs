//! What a test leaves on the shared servers, and its removal.

use crate::db;

/// What a test puts on the shared servers (its database, queues and exchanges),
/// removed by [`crate::TestSystem::shutdown`] or, when a test fails before that, when its
/// system is dropped: a failed test leaves nothing for the next run. (Quorum queues
/// that pile up run by the thousand on a broker that keeps serving test runs;
/// RabbitMQ is not made for that churn.)
pub(crate) struct Leftovers {
    pub(crate) amqp_url: String,
    pub(crate) topology: contracts::Topology,
    pub(crate) db_url: String,
    pub(crate) db_name: String,
    pub(crate) removed: bool,
}

impl Leftovers {
    pub(crate) async fn remove(&mut self) {
        self.removed = true;
        if let Ok(conn) = platform::amqp::connect(&self.amqp_url, "test-cleanup").await {
            if let Ok(ch) = conn.create_channel().await {
                drop(platform::amqp::delete_topology(&ch, &self.topology).await);
            }
            drop(conn.close(200, "test cleaned up".into()).await);
        }
        db::drop_database(&self.db_url, &self.db_name).await;
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let mut rest = Leftovers {
            amqp_url: std::mem::take(&mut self.amqp_url),
            topology: self.topology.clone(),
            db_url: std::mem::take(&mut self.db_url),
            db_name: std::mem::take(&mut self.db_name),
            removed: false,
        };
        self.removed = true;
        // A failing test unwinds inside its runtime, which can no longer run this:
        // a thread with a runtime of its own, waited for.
        let cleanup = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(rest.remove());
            }
        });
        drop(cleanup.join());
    }
}
