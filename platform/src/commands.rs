//! Sending a command into its show's partition: the one door every producer
//! (ingress, the payment saga, the hold-expiry sweep) goes through.

use crate::amqp::{ConfirmedPublisher, PublishError, json_properties};
use crate::layout::LayoutWatch;
use contracts::topology::{PAY_REQUEST_TYPE, REQUEST_ID_HEADER};
use contracts::{CommandEnvelope, MessageId, PayRequest, Topology};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// Publishes commands to the partition queue of their show, with confirms.
#[derive(Clone)]
pub struct CommandBus {
    publisher: ConfirmedPublisher,
    topology: Topology,
    layout: LayoutWatch,
}

impl CommandBus {
    /// `topology` names the deployment's queues (its partition count is the first
    /// layout's); commands route by the current layout `layout` reads.
    pub fn new(publisher: ConfirmedPublisher, topology: Topology, layout: LayoutWatch) -> Self {
        Self {
            publisher,
            topology,
            layout,
        }
    }

    /// Sends `env` to its show's partition in the current layout and returns once
    /// the broker confirmed it, and the layout it was routed by was still current
    /// then (see [`crate::layout`]). The AMQP headers carry the envelope's trace
    /// (`traceparent`) and request id.
    pub async fn send(&self, env: &CommandEnvelope) -> Result<(), PublishError> {
        let payload = serde_json::to_vec(env).expect("a command envelope always serializes");
        let mut headers = FieldTable::default();
        crate::trace::add_header(&mut headers, env.trace);
        if let Some(rid) = &env.request_id {
            headers.insert(
                REQUEST_ID_HEADER.into(),
                AMQPValue::LongString(LongString::from(rid.clone())),
            );
        }
        let routed = self.layout.route().await?;
        let topo = &routed.topology;
        self.publisher
            .publish(
                &topo.commands_exchange(),
                &topo.partition_key(topo.partition_of(env.show_id)),
                &payload,
                json_properties(&env.message_id.to_string(), headers),
            )
            .await?;
        Ok(self.layout.accept(&routed).await?)
    }

    /// The current layout (for a producer that publishes commands itself, as the
    /// dead-letter replay does).
    pub fn layout(&self) -> &LayoutWatch {
        &self.layout
    }

    /// Asks the payment saga to pay a held booking (its queue, AMQP type
    /// [`PAY_REQUEST_TYPE`]); the message id is fixed by the booking, so a repeat is
    /// one request.
    pub async fn request_payment(&self, req: &PayRequest) -> Result<(), PublishError> {
        let payload = serde_json::to_vec(req).expect("a pay request always serializes");
        let props = json_properties(
            &MessageId::for_booking(req.booking_id, "pay-request").to_string(),
            FieldTable::default(),
        )
        .with_type(ShortString::from(PAY_REQUEST_TYPE));
        self.publisher
            .publish("", &self.topology.saga_queue(), &payload, props)
            .await
    }

    /// The publisher underneath (for messages that are not commands).
    pub fn publisher(&self) -> &ConfirmedPublisher {
        &self.publisher
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }
}
