//! The saga on its two queues: decoding a delivery (a booking event, a pay request
//! or a verified webhook), handling it in its trace, and the consumer settings.

use super::{Saga, payments_dead_letter};
use contracts::SagaMessage;
use lapin::message::Delivery;
use payment_adapter::PaymentGateway;
use platform::amqp::{Backoff, ConsumerConfig, Failure, Handler};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Which saga handler a queue feeds.
#[derive(Clone, Copy, Debug)]
pub enum SagaQueue {
    Events,
    Webhooks,
}

async fn handle<G: PaymentGateway>(
    saga: &Saga<G>,
    which: SagaQueue,
    d: &Delivery,
) -> Result<(), Failure> {
    let abort = |e: serde_json::Error| Failure::Abort(format!("unparseable message: {e}"));
    let header = platform::trace::from_properties(&d.properties);
    match which {
        SagaQueue::Webhooks => {
            let ev = serde_json::from_slice(&d.data).map_err(abort)?;
            platform::trace::scope(header, saga.on_webhook(&ev)).await
        }
        SagaQueue::Events => on_saga_message(saga, d, header).await,
    }
}

/// A message of the saga queue (a booking event, a pay request, a refund retry or
/// an operator's record of a refund), read by the decoder the dead-letter replay
/// also checks with, handled in its trace (an exported `saga.handle` span under it).
async fn on_saga_message<G: PaymentGateway>(
    saga: &Saga<G>,
    d: &Delivery,
    header: Option<contracts::TraceParent>,
) -> Result<(), Failure> {
    let kind = d.properties.kind().as_ref().map(|k| k.as_str().to_owned());
    let message = SagaMessage::decode(kind.as_deref(), &d.data)
        .map_err(|e| Failure::Abort(format!("unparseable message: {e}")))?;
    let (label, trace) = match &message {
        SagaMessage::Event(env) => (env.event.routing_key(), env.trace.or(header)),
        SagaMessage::Pay(_) => ("pay_request", header),
        SagaMessage::RetryRefund(_) => ("refund_retry", header),
        SagaMessage::RecordRefund(_) => ("refund_record", header),
    };
    let span = tracing::info_span!("saga.handle", kind = label);
    platform::trace::attach(&span, trace);
    let handled = async {
        match &message {
            SagaMessage::Event(env) => saga.on_event(env).await,
            SagaMessage::Pay(req) => saga.on_pay_request(req).await,
            SagaMessage::RetryRefund(r) => saga.on_refund_retry(r).await,
            SagaMessage::RecordRefund(r) => saga.on_refund_record(r).await,
        }
    };
    platform::trace::scope(trace, handled)
        .instrument(span)
        .await
}

/// The saga consuming one of its queues.
pub struct SagaConsumer<G> {
    pub saga: Arc<Saga<G>>,
    pub which: SagaQueue,
}

impl<G: PaymentGateway + 'static> Handler for SagaConsumer<G> {
    async fn handle(&self, d: &Delivery) -> Result<(), Failure> {
        handle(&self.saga, self.which, d).await
    }

    fn on_retry(&self, _d: &Delivery, _reason: &str) {
        metrics::counter!("saga_retries_total").increment(1);
    }
}

/// How the saga consumes `which`, from the `payments` settings.
pub fn consumer_config(s: &platform::Settings, which: SagaQueue) -> ConsumerConfig {
    let topo = s.topology();
    let queue = match which {
        SagaQueue::Events => topo.saga_queue(),
        SagaQueue::Webhooks => topo.webhooks_queue(),
    };
    let p = &s.payments;
    ConsumerConfig {
        name: "saga".into(),
        queue: queue.clone(),
        prefetch: p.saga_prefetch,
        // Each handler waits mostly on the gateway and PostgreSQL, not on CPU.
        concurrency: p.saga_concurrency,
        requeue_backoff: Backoff {
            initial: Duration::from_millis(p.saga_requeue_initial_ms),
            max: Duration::from_millis(p.saga_requeue_max_ms),
        },
        dead_letter: payments_dead_letter(&topo.payments_dlx(), queue),
    }
}
