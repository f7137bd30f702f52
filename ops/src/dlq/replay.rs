//! Replaying dead letters: each selected message back to the queue it came from,
//! removed from the dead-letter queue only once the broker confirmed the publish.

use super::*;

/// Publishes each selected message back to its source and, once the broker has
/// confirmed it, removes it from `queue`; every other message stays. Safe to
/// repeat: the sequencer's inbox makes an already-applied message id a no-op.
#[tracing::instrument(skip(conn, topo))]
pub async fn replay(
    conn: &Connection,
    topo: &Topology,
    queue: &str,
    selection: &Selection,
) -> Result<ReplayOutcome, OpsError> {
    let q = resolve(topo, queue)?;
    let taken = Taken::take(conn, &q.name, SCAN_MAX).await?;
    let res = replay_taken(conn, topo, &q, &taken, selection).await;
    // Requeues whatever was not replayed (also after a failure).
    taken.put_back().await?;
    res
}

async fn replay_taken(
    conn: &Connection,
    topo: &Topology,
    q: &DeadLetterQueue,
    taken: &Taken,
    selection: &Selection,
) -> Result<ReplayOutcome, OpsError> {
    let now = now_secs();
    let described: Vec<DlqMessage> = taken.deliveries.iter().map(|d| describe(d, now)).collect();
    let mut out = ReplayOutcome {
        not_found: selection.not_found(
            described
                .iter()
                .filter(|m| selection.picks(m.message_id.as_deref())),
        ),
        ..ReplayOutcome::default()
    };
    let publisher = conn.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    for (d, m) in taken.deliveries.iter().zip(&described) {
        if !selection.picks(m.message_id.as_deref()) {
            continue;
        }
        let target = match route_back(topo, q.kind, d) {
            Ok(t) => t,
            Err(reason) => {
                out.skipped.push(Skipped {
                    message_id: m.message_id.clone(),
                    reason,
                });
                continue;
            }
        };
        let id = target.properties.message_id().clone();
        let id = id.map(|s| s.to_string()).unwrap_or_default();
        if let Err(detail) = publish_confirmed(&publisher, &target, &d.data).await {
            drop(publisher.close(200, "replay failed".into()).await);
            return Err(OpsError::Replay {
                message_id: id,
                replayed: out.replayed,
                detail,
            });
        }
        d.acker.ack(BasicAckOptions::default()).await?;
        out.replayed += 1;
        tracing::info!(queue = %q.name, message_id = %id, to = %target.routing_key, "replayed");
    }
    drop(publisher.close(200, "replay done".into()).await);
    Ok(out)
}

/// Where and how a message is published back.
struct Target {
    exchange: String,
    routing_key: String,
    properties: BasicProperties,
}

fn route_back(topo: &Topology, kind: DlqKind, d: &Delivery) -> Result<Target, String> {
    match kind {
        DlqKind::Commands => {
            let env: CommandEnvelope = serde_json::from_slice(&d.data)
                .map_err(|e| format!("not a command, cannot be routed back: {e}"))?;
            let message_id = d
                .properties
                .message_id()
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_else(|| env.message_id.to_string());
            let content_type = d
                .properties
                .content_type()
                .clone()
                .unwrap_or_else(|| ShortString::from("application/json"));
            let headers = replay_headers(d.properties.headers().as_ref());
            Ok(Target {
                exchange: topo.commands_exchange(),
                routing_key: topo.partition_key(topo.partition_of(env.show_id)),
                properties: BasicProperties::default()
                    .with_content_type(content_type)
                    .with_delivery_mode(2)
                    .with_message_id(ShortString::from(message_id))
                    .with_timestamp(now_secs())
                    .with_headers(headers),
            })
        }
        DlqKind::Notifier => {
            let mut props = BasicProperties::default()
                .with_content_type(ShortString::from("application/json"))
                .with_delivery_mode(2)
                .with_timestamp(now_secs())
                .with_headers(replay_headers(d.properties.headers().as_ref()));
            if let Some(id) = d.properties.message_id() {
                props = props.with_message_id(id.clone());
            }
            Ok(Target {
                exchange: String::new(),
                routing_key: topo.notifier_queue(),
                properties: props,
            })
        }
        DlqKind::Payments => {
            let source = describe_parts(&d.properties, &[], 0)
                .source_queue
                .filter(|q| *q == topo.saga_queue() || *q == topo.webhooks_queue())
                .ok_or_else(|| "no saga source queue recorded, cannot be routed back".to_owned())?;
            let mut props = BasicProperties::default()
                .with_content_type(ShortString::from("application/json"))
                .with_delivery_mode(2)
                .with_timestamp(now_secs())
                .with_headers(replay_headers(d.properties.headers().as_ref()));
            if let Some(id) = d.properties.message_id() {
                props = props.with_message_id(id.clone());
            }
            if let Some(kind) = d.properties.kind() {
                props = props.with_type(kind.clone());
            }
            Ok(Target {
                exchange: String::new(),
                routing_key: source,
                properties: props,
            })
        }
    }
}

async fn publish_confirmed(ch: &Channel, t: &Target, body: &[u8]) -> Result<(), String> {
    let confirm = ch
        .basic_publish(
            t.exchange.as_str().into(),
            t.routing_key.as_str().into(),
            // Mandatory: a message no queue takes comes back instead of vanishing.
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            t.properties.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(CONFIRM_WAIT, confirm).await {
        Err(_) => Err(format!("no publisher confirm within {CONFIRM_WAIT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(c)) if c.is_ack() => match c.take_message() {
            None => Ok(()),
            Some(_) => Err(format!(
                "no queue is bound to {} with key {}",
                t.exchange, t.routing_key
            )),
        },
        Ok(Ok(_)) => Err("the broker refused the message (nack)".to_owned()),
    }
}

/// The original headers minus the death headers and the dead-letter reason.
pub fn replay_headers(headers: Option<&FieldTable>) -> FieldTable {
    let mut map: BTreeMap<ShortString, AMQPValue> = without_deaths(headers).inner().clone();
    map.retain(|k, _| {
        let k = k.as_str();
        k != DEAD_LETTER_REASON_HEADER && k != SOURCE_QUEUE_HEADER
    });
    FieldTable::from(map)
}
