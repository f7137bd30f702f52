//! The gateway's HTTP API: API-key auth, idempotency keys, and the payment intent
//! and refund handlers over [`Shared`].

use super::*;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/v1/payment_intents", post(create_intent).get(list_intents))
        .route("/v1/payment_intents/{id}", get(get_intent))
        .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
        .route("/v1/refunds", post(create_refund))
        .route("/v1/refunds/{id}", get(get_refund))
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            require_api_key,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(api)
        .fallback(|| async { ApiFailure::not_found("no such route") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(shared)
}

/// A Stripe-style error answer.
#[derive(Debug)]
struct ApiFailure {
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    message: String,
}

impl ApiFailure {
    fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            code: "resource_missing",
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let body = ApiErrorBody {
            error: ApiError {
                kind: self.kind.into(),
                code: self.code.into(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

async fn require_api_key(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let valid = presented
        .is_some_and(|key| bool::from(key.as_bytes().ct_eq(shared.cfg.api_key.as_bytes())));
    if !valid {
        return ApiFailure {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication_error",
            code: "invalid_api_key",
            message: "send Authorization: Bearer <api key>".into(),
        }
        .into_response();
    }
    next.run(request).await
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiFailure> {
    let value = headers.get(IDEMPOTENCY_HEADER).ok_or_else(|| {
        ApiFailure::invalid(
            "idempotency_key_missing",
            "this route needs an Idempotency-Key header",
        )
    })?;
    let value = value.to_str().map_err(|_| {
        ApiFailure::invalid("idempotency_key_invalid", "Idempotency-Key must be ASCII")
    })?;
    let key = contracts::IdempotencyKey::try_from(value)
        .map_err(|msg| ApiFailure::invalid("idempotency_key_invalid", msg))?;
    Ok(key.as_str().to_owned())
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiFailure> {
    serde_json::from_slice(body)
        .map_err(|e| ApiFailure::invalid("parameter_invalid", e.to_string()))
}

#[tracing::instrument(
    name = "local.create_intent",
    skip_all,
    fields(booking_id = tracing::field::Empty, payment_id = tracing::field::Empty)
)]
async fn create_intent(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PaymentIntent>, ApiFailure> {
    let key = idempotency_key(&headers)?;
    let req: CreateIntentRequest = parse_body(&body)?;
    let span = tracing::Span::current();
    span.record(
        "booking_id",
        tracing::field::display(req.metadata.booking_id),
    );
    if req.amount <= 0 {
        return Err(ApiFailure::invalid(
            "amount_too_small",
            "amount must be > 0",
        ));
    }
    if !(req.currency.len() == 3 && req.currency.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(ApiFailure::invalid(
            "currency_invalid",
            "currency must be three uppercase letters",
        ));
    }
    let card = Card::parse(&req.payment_method).ok_or_else(|| {
        ApiFailure::invalid(
            "invalid_payment_method",
            format!("unknown payment_method {:?}", req.payment_method),
        )
    })?;

    let intent = {
        let mut store = shared.store();
        if let Some(seen) = store.intent_keys.get(&key) {
            if seen.request != req {
                return Err(idempotency_mismatch());
            }
            let intent = store.intents.get(&seen.id).cloned();
            drop(store);
            let intent = intent.ok_or_else(|| ApiFailure::not_found("intent vanished"))?;
            span.record("payment_id", intent.id.as_str());
            tracing::info!("replayed under its idempotency key");
            return Ok(Json(intent));
        }
        if card == Card::Error && store.errored_keys.insert(key.clone()) {
            drop(store);
            tracing::info!("pm_card_error: failing the first request of this key");
            return Err(ApiFailure {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                kind: "api_error",
                code: "internal_error",
                message: "the gateway failed; retry with the same Idempotency-Key".into(),
            });
        }
        let intent = PaymentIntent {
            id: new_id("pi"),
            object: OBJECT_PAYMENT_INTENT.into(),
            amount: req.amount,
            currency: req.currency.clone(),
            status: IntentStatus::Processing,
            payment_method: req.payment_method.clone(),
            metadata: req.metadata.clone(),
            amount_refunded: 0,
            last_payment_error: None,
            created: unix_now(),
        };
        store.intents.insert(intent.id.clone(), intent.clone());
        store.intent_order.push(intent.id.clone());
        store.intent_keys.insert(
            key,
            Remembered {
                request: req,
                id: intent.id.clone(),
            },
        );
        intent
    };
    span.record("payment_id", intent.id.as_str());
    tracing::info!(payment_method = %intent.payment_method, amount = intent.amount, "intent created");
    shared.settle_intent_later(intent.id.clone(), card);

    if card == Card::Timeout {
        tracing::info!(
            hang_ms = shared.cfg.hang_ms,
            "pm_card_timeout: hanging before answering"
        );
        shared.pause(shared.cfg.hang_ms).await;
        let now = shared.store().intents.get(&intent.id).cloned();
        return Ok(Json(now.unwrap_or(intent)));
    }
    Ok(Json(intent))
}

fn idempotency_mismatch() -> ApiFailure {
    ApiFailure {
        status: StatusCode::BAD_REQUEST,
        kind: "idempotency_error",
        code: "idempotency_key_in_use",
        message: "this Idempotency-Key was used with a different request".into(),
    }
}

async fn get_intent(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Json<PaymentIntent>, ApiFailure> {
    let intent = shared.store().intents.get(&id).cloned();
    intent
        .map(Json)
        .ok_or_else(|| ApiFailure::not_found(format!("no payment intent {id}")))
}

/// Query of `GET /v1/payment_intents`.
#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    starting_after: Option<String>,
}

/// Most intents on one page, and the page size when the query names none.
const LIST_LIMIT_MAX: usize = 100;
const LIST_LIMIT_DEFAULT: usize = 10;

async fn list_intents(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<List<PaymentIntent>>, ApiFailure> {
    let limit = q.limit.unwrap_or(LIST_LIMIT_DEFAULT);
    if !(1..=LIST_LIMIT_MAX).contains(&limit) {
        return Err(ApiFailure::invalid(
            "parameter_invalid",
            format!("limit must be 1-{LIST_LIMIT_MAX}"),
        ));
    }
    let store = shared.store();
    // Newest first; a cursor is the last id of the previous page.
    let newest_first = store.intent_order.iter().rev();
    let after: Vec<&String> = match &q.starting_after {
        None => newest_first.collect(),
        Some(cursor) => {
            let mut rest = newest_first.skip_while(|id| *id != cursor);
            if rest.next().is_none() {
                return Err(ApiFailure::invalid(
                    "resource_missing",
                    format!("no payment intent {cursor}"),
                ));
            }
            rest.collect()
        }
    };
    let data = after
        .iter()
        .take(limit)
        .filter_map(|id| store.intents.get(*id).cloned())
        .collect();
    Ok(Json(List {
        object: OBJECT_LIST.into(),
        data,
        has_more: after.len() > limit,
    }))
}

#[tracing::instrument(name = "local.cancel_intent", skip(shared))]
async fn cancel_intent(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Json<PaymentIntent>, ApiFailure> {
    let mut store = shared.store();
    let intent = store
        .intents
        .get_mut(&id)
        .ok_or_else(|| ApiFailure::not_found(format!("no payment intent {id}")))?;
    match intent.status {
        IntentStatus::Processing => {
            intent.status = IntentStatus::Canceled;
            tracing::info!(booking_id = %intent.metadata.booking_id, "intent canceled");
        }
        // Cancelling twice answers the same: a client retrying a cancel whose answer
        // was lost must not see an error.
        IntentStatus::Canceled => {}
        IntentStatus::Succeeded | IntentStatus::RequiresPaymentMethod => {
            return Err(ApiFailure::invalid(
                "payment_intent_unexpected_state",
                format!("a {:?} payment intent cannot be canceled", intent.status),
            ));
        }
    }
    Ok(Json(intent.clone()))
}

#[tracing::instrument(
    name = "local.create_refund",
    skip_all,
    fields(payment_id = tracing::field::Empty, refund_id = tracing::field::Empty)
)]
async fn create_refund(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Refund>, ApiFailure> {
    let key = idempotency_key(&headers)?;
    let req: CreateRefundRequest = parse_body(&body)?;
    let span = tracing::Span::current();
    span.record("payment_id", req.payment_intent.as_str());
    if req.amount <= 0 {
        return Err(ApiFailure::invalid(
            "amount_too_small",
            "amount must be > 0",
        ));
    }

    let (refund, fails) = {
        let mut store = shared.store();
        if let Some(seen) = store.refund_keys.get(&key) {
            if seen.request != req {
                return Err(idempotency_mismatch());
            }
            let refund = store.refunds.get(&seen.id).cloned();
            drop(store);
            return refund
                .map(Json)
                .ok_or_else(|| ApiFailure::not_found("refund vanished"));
        }
        let intent = store.intents.get(&req.payment_intent).ok_or_else(|| {
            ApiFailure::invalid(
                "resource_missing",
                format!("no payment intent {}", req.payment_intent),
            )
        })?;
        if intent.status != IntentStatus::Succeeded {
            return Err(ApiFailure::invalid(
                "payment_intent_unexpected_state",
                format!(
                    "only succeeded payments can be refunded, this one is {:?}",
                    intent.status
                ),
            ));
        }
        let pending = store.refunds_pending.get(&intent.id).copied().unwrap_or(0);
        let refundable = intent.amount - intent.amount_refunded - pending;
        if req.amount > refundable {
            return Err(ApiFailure::invalid(
                "amount_too_large",
                format!("at most {refundable} can be refunded"),
            ));
        }
        let first_refund = !store
            .refunds
            .values()
            .any(|r| r.payment_intent == intent.id);
        let fails = intent.payment_method == methods::REFUND_FAIL
            || (intent.payment_method == methods::REFUND_FAIL_ONCE && first_refund);
        let refund = Refund {
            id: new_id("re"),
            object: OBJECT_REFUND.into(),
            payment_intent: intent.id.clone(),
            amount: req.amount,
            currency: intent.currency.clone(),
            status: RefundStatus::Pending,
            failure_reason: None,
        };
        *store
            .refunds_pending
            .entry(refund.payment_intent.clone())
            .or_default() += refund.amount;
        store.refunds.insert(refund.id.clone(), refund.clone());
        store.refund_keys.insert(
            key,
            Remembered {
                request: req,
                id: refund.id.clone(),
            },
        );
        (refund, fails)
    };
    span.record("refund_id", refund.id.as_str());
    tracing::info!(amount = refund.amount, "refund created");
    shared.settle_refund_later(refund.id.clone(), fails);
    Ok(Json(refund))
}

async fn get_refund(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Json<Refund>, ApiFailure> {
    let refund = shared.store().refunds.get(&id).cloned();
    refund
        .map(Json)
        .ok_or_else(|| ApiFailure::not_found(format!("no refund {id}")))
}
