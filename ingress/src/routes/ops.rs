//! `/v1/ops/...` (API.md, "Operations"): dead-letter queues and partitions, for
//! roles operator and admin (one route layer checks it for every handler here).
//!
//! Ops calls are rare, so each request opens its own short-lived AMQP connection
//! (closing it also requeues anything a failed call still held) instead of sharing
//! the publisher's. Only queues of the dead-letter registry can be read: any other
//! name is a 404.

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ops::OpsError;
use ops::dlq::dry_run::DryRunMessage;
use ops::dlq::{DlqMessage, DlqSummary, PurgeOutcome, Selection};
use ops::partitions::PartitionInfo;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Default and most messages of one `GET .../messages`.
const MESSAGES_LIMIT_DEFAULT: u16 = 20;
const MESSAGES_LIMIT_MAX: u16 = 100;

#[derive(Debug, Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Messages to show, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u16>,
}

/// The body of `POST /v1/ops/dlq/{queue}/replay`: exactly one of `message_ids` and
/// `all`; with `dry_run: true`, nothing is published or removed and the answer says
/// what the replay would do.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"all": true, "dry_run": true}))]
pub struct ReplayRequest {
    #[serde(default)]
    pub message_ids: Option<Vec<String>>,
    #[serde(default)]
    pub all: Option<bool>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// What a replay would do (`dry_run: true`): per message, in order, the sequencer's
/// outcome over the shows' current state.
#[derive(Debug, Serialize)]
pub struct DryRunAnswer {
    pub dry_run: bool,
    pub queue: String,
    pub messages: Vec<DryRunMessage>,
    /// Asked ids no message had.
    pub not_found: Vec<String>,
}

/// The body of `POST /v1/ops/dlq/{queue}/purge`: the messages to delete for good.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"message_ids": ["0193a000-0000-7000-8000-000000000009"]}))]
pub struct PurgeRequest {
    pub message_ids: Vec<String>,
}

impl TryFrom<ReplayRequest> for Selection {
    type Error = ApiError;

    fn try_from(r: ReplayRequest) -> Result<Self, ApiError> {
        match (r.message_ids, r.all) {
            (None, Some(true)) => Ok(Selection::All),
            (Some(ids), None | Some(false)) if !ids.is_empty() => {
                Ok(Selection::Ids(checked_ids(ids)?))
            }
            _ => Err(ApiError::Validation(
                "send exactly one of message_ids (a non-empty list) or all: true".into(),
            )),
        }
    }
}

/// Message ids as an operator names them: at least one, each 1-255 characters.
fn checked_ids(ids: Vec<String>) -> Result<Vec<String>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::Validation(
            "message_ids must name at least one message".into(),
        ));
    }
    if ids.iter().any(|i| i.is_empty() || i.len() > 255) {
        return Err(ApiError::Validation(
            "each message id must be 1-255 characters".into(),
        ));
    }
    Ok(ids)
}

fn ops_error(e: OpsError) -> ApiError {
    match e {
        OpsError::UnknownQueue { .. } => ApiError::NotFound(e.to_string()),
        OpsError::Broker(_) => ApiError::Unavailable(e.into()),
        OpsError::Db(db) => db.into(),
        // The message stays in the dead-letter queue; retrying is safe.
        OpsError::Replay { .. } => ApiError::Unavailable(e.into()),
        OpsError::Store(ops::StoreError::Db(db)) => db.into(),
        OpsError::Store(_) => ApiError::Internal(e.into()),
        OpsError::Invalid(m) => ApiError::Validation(m),
        OpsError::NotFound(m) => ApiError::NotFound(m),
        OpsError::Conflict(m) => ApiError::Conflict(m),
    }
}

async fn connect(state: &AppState) -> Result<lapin::Connection, ApiError> {
    platform::amqp::connect(&state.settings.amqp.url, "ingress-ops")
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))
}

async fn close(conn: lapin::Connection) {
    drop(conn.close(200, "ops request done".into()).await);
}

/// Each dead-letter queue with its message count.
#[utoipa::path(get, path = "/v1/ops/dlq", tag = "ops", security(("bearer" = [])),
    responses((status = 200, description = "`{items: [{queue, source_queue, messages}]}`", body = Object)))]
pub async fn list_dlqs(State(state): State<AppState>) -> Result<Json<Items<DlqSummary>>, ApiError> {
    let conn = connect(&state).await?;
    let res = ops::dlq::list(&conn, &state.topology).await;
    close(conn).await;
    Ok(Json(Items {
        items: res.map_err(ops_error)?,
    }))
}

/// The messages of a dead-letter queue with headers, death reason and count, the
/// history of every time each was dead-lettered, body.
#[utoipa::path(get, path = "/v1/ops/dlq/{queue}/messages", tag = "ops", security(("bearer" = [])),
    params(("queue" = String, Path, description = "A dead-letter queue of `GET /v1/ops/dlq`"), MessagesQuery),
    responses((status = 200, description = "`{items: [{message_id, reason, death_count, history: [{reason, source, at}], source_queue, age_secs, content_type, headers, body}]}`; `history` lists every time the message was dead-lettered, oldest first (`at` in Unix seconds), kept through replays", body = Object)))]
pub async fn dlq_messages(
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> Result<Json<Items<DlqMessage>>, ApiError> {
    let limit = q.limit.unwrap_or(MESSAGES_LIMIT_DEFAULT);
    if !(1..=MESSAGES_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::Validation(format!(
            "limit must be between 1 and {MESSAGES_LIMIT_MAX}"
        )));
    }
    ops::dlq::resolve(&state.topology, &queue).map_err(ops_error)?;
    let conn = connect(&state).await?;
    let res = ops::dlq::show(&conn, &state.topology, &queue, limit).await;
    close(conn).await;
    Ok(Json(Items {
        items: res.map_err(ops_error)?,
    }))
}

/// Moves dead letters back to their source queue (safe to repeat: applied messages
/// are no-ops). A message its consumer could not read is skipped and stays. With
/// `dry_run: true`, moves nothing and answers, from the replay's own decision, what
/// replaying each selected message would do now (`{dry_run, queue, messages:
/// [{message_id, command, show_id, booking_id, outcome, changes}], not_found}`):
/// for commands the sequencer's outcome (`would_apply`, `already_applied`,
/// `not_a_command`, `show_not_loadable`); for the payments and notifier queues
/// `would_publish {to, detail}` (e.g. a failed refund: "retries the refund of
/// booking ...") or `would_skip {detail}`.
#[utoipa::path(post, path = "/v1/ops/dlq/{queue}/replay", tag = "ops", security(("bearer" = [])),
    params(("queue" = String, Path, description = "A dead-letter queue of `GET /v1/ops/dlq`")),
    request_body = ReplayRequest,
    responses((status = 200, description = "How many were replayed, or the dry run", body = Object)))]
pub async fn replay_dlq(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(queue): ApiPath<String>,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> Result<Response, ApiError> {
    let dry_run = body.dry_run.unwrap_or(false);
    let selection = Selection::try_from(body)?;
    ops::dlq::resolve(&state.topology, &queue).map_err(ops_error)?;
    if dry_run {
        return dry_run_replay(&state, queue, &selection)
            .await
            .map(|a| Json(a).into_response());
    }
    let conn = connect(&state).await?;
    let res = ops::dlq::replay(
        &conn,
        &state.topology,
        state.commands.layout(),
        &queue,
        &selection,
    )
    .await;
    close(conn).await;
    let outcome = res.map_err(ops_error)?;
    tracing::warn!(
        user_id = %caller.user_id,
        queue = %queue,
        replayed = outcome.replayed,
        "dead-letter replay"
    );
    Ok(Json(outcome).into_response())
}

async fn dry_run_replay(
    state: &AppState,
    queue: String,
    selection: &Selection,
) -> Result<DryRunAnswer, ApiError> {
    let conn = connect(state).await?;
    let peeked = ops::dlq::peek(&conn, &state.topology, &queue, selection).await;
    close(conn).await;
    let peeked = peeked.map_err(ops_error)?;
    let messages =
        ops::dlq::dry_run::simulate(&state.db, &state.topology, &queue, &peeked.messages)
            .await
            .map_err(ops_error)?;
    Ok(DryRunAnswer {
        dry_run: true,
        queue,
        messages,
        not_found: peeked.not_found,
    })
}

/// Deletes the named dead letters for good (every other message stays). There is no
/// "all": a purge is chosen message by message, after reading them.
#[utoipa::path(post, path = "/v1/ops/dlq/{queue}/purge", tag = "ops", security(("bearer" = [])),
    params(("queue" = String, Path, description = "A dead-letter queue of `GET /v1/ops/dlq`")),
    request_body = PurgeRequest,
    responses((status = 200, description = "`{removed, not_found}`", body = Object)))]
pub async fn purge_dlq(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(queue): ApiPath<String>,
    ApiJson(body): ApiJson<PurgeRequest>,
) -> Result<Json<PurgeOutcome>, ApiError> {
    let ids = checked_ids(body.message_ids)?;
    ops::dlq::resolve(&state.topology, &queue).map_err(ops_error)?;
    let conn = connect(&state).await?;
    let res = ops::dlq::purge(&conn, &state.topology, &queue, &ids).await;
    close(conn).await;
    let outcome = res.map_err(ops_error)?;
    tracing::warn!(
        user_id = %caller.user_id,
        queue = %queue,
        removed = outcome.removed,
        "dead-letter purge"
    );
    Ok(Json(outcome))
}

/// Each partition: active worker, epoch, queue depth, last batch time.
#[utoipa::path(get, path = "/v1/ops/partitions", tag = "ops", security(("bearer" = [])),
    responses((status = 200, description = "`{items: [partition]}`", body = Object)))]
pub async fn partitions(
    State(state): State<AppState>,
) -> Result<Json<Items<PartitionInfo>>, ApiError> {
    let conn = connect(&state).await?;
    let res = ops::partitions::list(&conn, &state.db, &state.topology).await;
    close(conn).await;
    Ok(Json(Items {
        items: res.map_err(ops_error)?,
    }))
}

/// The money-versus-seats check over the whole database, compared with the
/// payment gateway's payments and refunds.
#[utoipa::path(get, path = "/v1/ops/reconcile", tag = "ops", security(("bearer" = [])),
    responses((status = 200, description = "`{ok, bookings, problems: [{kind, booking_id, detail}]}`", body = Object)))]
pub async fn reconcile(
    State(state): State<AppState>,
) -> Result<Json<ops::reconcile::Report>, ApiError> {
    let gateway = ops::reconcile::gateway_of(&state.settings);
    Ok(Json(
        ops::reconcile::with_gateway(&state.db, &gateway).await?,
    ))
}

/// The body of `POST /v1/ops/bookings/{booking_id}/refund-record`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refund_id": "bank-tx-20261208-001", "note": "refunded by bank transfer, ticket 4411"}))]
pub struct RefundRecordRequest {
    /// The provider's or bank's reference of the refund made by hand (1-255 visible
    /// ASCII characters).
    pub refund_id: String,
    /// What was done (1-1000 characters).
    pub note: String,
}

/// Records a refund made by hand for a booking whose refund the gateway refused for
/// good: the saga ends the refund with this reference, the booking ends `refunded`
/// through its partition, and reconciliation no longer reports `refund_failed`. The
/// parked message in `payments.dlq` may then be purged (replaying it does nothing).
#[utoipa::path(post, path = "/v1/ops/bookings/{booking_id}/refund-record", tag = "ops", security(("bearer" = [])),
    params(("booking_id" = uuid::Uuid, Path, description = "The booking whose refund failed")),
    request_body = RefundRecordRequest,
    responses(
        (status = 202, description = "Handed to the saga: `{booking_id, attempt, amount, refund_id}`; poll the booking until `refunded`", body = Object),
        (status = 404, description = "No such booking (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The booking has no failed refund (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid refund_id or note (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn record_refund(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(booking): ApiPath<uuid::Uuid>,
    ApiJson(body): ApiJson<RefundRecordRequest>,
) -> Result<Response, ApiError> {
    ops::refunds::check(&body.refund_id, &body.note).map_err(ops_error)?;
    let conn = connect(&state).await?;
    let res = ops::refunds::record(
        &conn,
        &state.db,
        &state.topology,
        contracts::BookingId(booking),
        &body.refund_id,
        &body.note,
        &format!("user {}", caller.user_id),
    )
    .await;
    close(conn).await;
    let recorded = res.map_err(ops_error)?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(recorded)).into_response())
}

/// `/v1/ops/...`
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_dlqs))
        .routes(routes!(dlq_messages))
        .routes(routes!(replay_dlq))
        .routes(routes!(purge_dlq))
        .routes(routes!(partitions))
        .routes(routes!(reconcile))
        .routes(routes!(record_refund))
        .route_layer(axum::middleware::from_fn(crate::auth::layer::staff))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ids: Option<Vec<&str>>, all: Option<bool>) -> ReplayRequest {
        ReplayRequest {
            message_ids: ids.map(|v| v.into_iter().map(String::from).collect()),
            all,
            dry_run: None,
        }
    }

    #[test]
    fn a_replay_names_exactly_one_of_ids_or_all() {
        assert_eq!(
            Selection::try_from(req(None, Some(true))).unwrap(),
            Selection::All
        );
        assert_eq!(
            Selection::try_from(req(Some(vec!["a"]), None)).unwrap(),
            Selection::Ids(vec!["a".into()])
        );
        for bad in [
            req(None, None),
            req(None, Some(false)),
            req(Some(vec![]), None),
            req(Some(vec!["a"]), Some(true)),
            req(Some(vec![""]), None),
        ] {
            assert!(matches!(
                Selection::try_from(bad),
                Err(ApiError::Validation(_))
            ));
        }
    }
}
