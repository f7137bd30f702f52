//! Taking messages from a queue for a moment: consumed with manual acks on a channel
//! of their own, then acked (removed) or put back.

use super::*;

/// Deliveries taken from a queue on a channel of their own.
pub(super) struct Taken {
    pub(super) ch: Channel,
    /// Ready messages when the operation began.
    pub(super) available: u32,
    pub(super) deliveries: Vec<Delivery>,
}

impl Taken {
    /// Consumes up to `max` messages (manual acks, prefetch = what is wanted).
    pub(super) async fn take(conn: &Connection, queue: &str, max: u16) -> Result<Self, OpsError> {
        let ch = conn.create_channel().await?;
        let (available, _) = platform::amqp::queue_counts(&ch, queue).await?;
        let want = available.min(u32::from(max));
        let mut taken = Self {
            ch,
            available,
            deliveries: Vec::new(),
        };
        if want == 0 {
            return Ok(taken);
        }
        if let Err(e) = taken.consume(queue, want).await {
            drop(taken.ch.close(200, "ops read failed".into()).await);
            return Err(e);
        }
        Ok(taken)
    }

    async fn consume(&mut self, queue: &str, want: u32) -> Result<(), OpsError> {
        let prefetch = u16::try_from(want).unwrap_or(u16::MAX);
        self.ch
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let tag = format!("ops-{}", uuid::Uuid::new_v4().simple());
        // Not `platform::amqp::consume`: this is no long-running consumer but a
        // bounded read that holds what it took unacked until the operation decides.
        let mut consumer = self
            .ch
            .basic_consume(
                queue.into(),
                tag.clone().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        while self.deliveries.len() < usize::from(prefetch) {
            let wait = if self.deliveries.is_empty() {
                FIRST_DELIVERY_WAIT
            } else {
                IDLE_WAIT
            };
            match tokio::time::timeout(wait, consumer.next()).await {
                Ok(Some(Ok(d))) => self.deliveries.push(d),
                Ok(Some(Err(e))) => return Err(e.into()),
                Ok(None) | Err(_) => break,
            }
        }
        // Cancel before requeueing, or the requeued messages come straight back.
        self.ch
            .basic_cancel(tag.into(), BasicCancelOptions::default())
            .await?;
        Ok(())
    }

    /// Nacks with requeue every delivery not acked yet, and closes the channel (which
    /// would requeue them too, and anything that arrived after the cancel).
    pub(super) async fn put_back(self) -> Result<(), OpsError> {
        let requeue = BasicNackOptions {
            requeue: true,
            multiple: false,
        };
        let mut res = Ok(());
        for d in &self.deliveries {
            if d.acker.usable()
                && let Err(e) = d.acker.nack(requeue).await
            {
                res = Err(e.into());
                break;
            }
        }
        drop(self.ch.close(200, "ops done".into()).await);
        res
    }
}
