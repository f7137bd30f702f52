//! Sending a command into its show's partition: the one door every producer
//! (ingress, the payment saga, the hold-expiry sweep) goes through.

use crate::amqp::{ConfirmedPublisher, PublishError, json_properties};
use contracts::topology::{PAY_REQUEST_TYPE, REQUEST_ID_HEADER};
use contracts::{CommandEnvelope, MessageId, PayRequest, Topology};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// Publishes commands to the partition queue of their show, with confirms.
#[derive(Clone)]
pub struct CommandBus {
    publisher: ConfirmedPublisher,
    topology: Topology,
}

impl CommandBus {
    pub fn new(publisher: ConfirmedPublisher, topology: Topology) -> Self {
        Self {
            publisher,
            topology,
        }
    }

    /// Sends `env` to `partition_of(show_id)` and returns once the broker confirmed
    /// it. The AMQP headers carry the envelope's trace (`traceparent`) and request id.
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
        let partition = self.topology.partition_of(env.show_id);
        self.publisher
            .publish(
                &self.topology.commands_exchange(),
                &self.topology.partition_key(partition),
                &payload,
                json_properties(&env.message_id.to_string(), headers),
            )
            .await
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
