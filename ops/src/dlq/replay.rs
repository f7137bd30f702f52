//! Replaying dead letters: each selected message back to the queue it came from,
//! removed from the dead-letter queue only once the broker confirmed the publish.

use super::*;
use platform::layout::LayoutWatch;

/// Publishes each selected message back to its source and, once the broker has
/// confirmed it, removes it from `queue`; every other message stays. Safe to
/// repeat: the sequencer's inbox makes an already-applied message id a no-op.
/// Commands go to their show's partition in the current layout, by the same rule
/// as every producer's (`platform::layout`).
#[tracing::instrument(skip(conn, topo, layout))]
pub async fn replay(
    conn: &Connection,
    topo: &Topology,
    layout: &LayoutWatch,
    queue: &str,
    selection: &Selection,
) -> Result<ReplayOutcome, OpsError> {
    let q = resolve(topo, queue)?;
    let taken = Taken::take(conn, &q.name, SCAN_MAX).await?;
    let res = replay_taken(conn, topo, layout, &q, &taken, selection).await;
    // Requeues whatever was not replayed (also after a failure).
    taken.put_back().await?;
    res
}

async fn replay_taken(
    conn: &Connection,
    topo: &Topology,
    layout: &LayoutWatch,
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
        let routed = match q.kind {
            DlqKind::Commands => Some(layout.route().await.map_err(|e| OpsError::Replay {
                message_id: m.message_id.clone().unwrap_or_default(),
                replayed: out.replayed,
                detail: e.to_string(),
            })?),
            _ => None,
        };
        let to = routed.as_ref().map_or(topo, |r| &r.topology);
        let target = match route_back(to, q.kind, &d.properties, &d.data) {
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
        let mut sent = publish_confirmed(&publisher, &target, &d.data).await;
        if let (Ok(()), Some(r)) = (&sent, &routed) {
            sent = layout.accept(r).await.map_err(|e| e.to_string());
        }
        if let Err(detail) = sent {
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
pub(crate) struct Target {
    pub exchange: String,
    pub routing_key: String,
    pub properties: BasicProperties,
    /// What its consumer will do with it, for people (the dry run says it).
    pub what: String,
}

/// The one decision of where a dead letter goes back and whether its consumer
/// will understand it: the replay publishes what this returns, and the dry run
/// reports it; an `Err` is why the message is skipped (it stays in the queue).
pub(crate) fn route_back(
    topo: &Topology,
    kind: DlqKind,
    props: &BasicProperties,
    body: &[u8],
) -> Result<Target, String> {
    let base = || {
        let mut p = BasicProperties::default()
            .with_content_type(
                props
                    .content_type()
                    .clone()
                    .unwrap_or_else(|| ShortString::from("application/json")),
            )
            .with_delivery_mode(2)
            .with_timestamp(now_secs())
            .with_headers(replay_headers(props.headers().as_ref()));
        if let Some(id) = props.message_id() {
            p = p.with_message_id(id.clone());
        }
        p
    };
    match kind {
        DlqKind::Commands => {
            let env: CommandEnvelope = serde_json::from_slice(body)
                .map_err(|e| format!("not a command, cannot be routed back: {e}"))?;
            let mut properties = base();
            if props.message_id().is_none() {
                properties =
                    properties.with_message_id(ShortString::from(env.message_id.to_string()));
            }
            Ok(Target {
                exchange: topo.commands_exchange(),
                routing_key: topo.partition_key(topo.partition_of(env.show_id)),
                properties,
                what: format!(
                    "{} of booking {}",
                    env.command.kind(),
                    env.command.booking_id()
                ),
            })
        }
        DlqKind::Notifier => Ok(Target {
            exchange: String::new(),
            routing_key: topo.notifier_queue(),
            properties: base(),
            what: "sent again by the notifier".to_owned(),
        }),
        DlqKind::Payments => {
            let headers = props.headers().clone().unwrap_or_default();
            let source = describe_parts(props, &[], 0)
                .source_queue
                .or_else(|| {
                    // The latest death of the history names the queue.
                    platform::amqp::headers::deaths(&headers)
                        .pop()
                        .map(|d| d.source)
                })
                .filter(|q| *q == topo.saga_queue() || *q == topo.webhooks_queue())
                .ok_or_else(|| "no saga source queue recorded, cannot be routed back".to_owned())?;
            let mut properties = base();
            let what = if source == topo.webhooks_queue() {
                let ev: payment_adapter::WebhookEvent = serde_json::from_slice(body)
                    .map_err(|e| format!("the saga cannot read it as a webhook: {e}"))?;
                format!(
                    "webhook {} ({}) of booking {}",
                    ev.id, ev.kind, ev.data.booking_id
                )
            } else {
                // Read as the saga reads it: a message it would refuse is not sent.
                let kind = props.kind().as_ref().map(|k| k.as_str().to_owned());
                let msg = SagaMessage::decode(kind.as_deref(), body)
                    .map_err(|e| format!("the saga cannot read it: {e}"))?;
                if let Some(k) = msg.kind() {
                    properties = properties.with_type(ShortString::from(k));
                }
                msg.describe()
            };
            Ok(Target {
                exchange: String::new(),
                routing_key: source,
                properties,
                what,
            })
        }
    }
}

pub(crate) async fn publish_confirmed(ch: &Channel, t: &Target, body: &[u8]) -> Result<(), String> {
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

/// The original headers minus the death headers, the dead-letter reason and the
/// source queue, with every death so far kept in `x-dead-letter-history`.
pub fn replay_headers(headers: Option<&FieldTable>) -> FieldTable {
    platform::amqp::headers::for_replay(headers)
}
