-- Operators and a failed refund (a refund the gateway refused for good is parked in
-- payments.dlq):
-- - `refund_retries`: retries replayed from the dead-letter queue so far; retry n
--   asks the gateway under its own idempotency key (`{refund key}-r{n}`), so a
--   message replayed twice is one refund and a retry is never the cached failure;
-- - `refund_recorded_by`, `refund_note`: a refund an operator made by hand and
--   recorded (`bookctl refund record`, `POST /v1/ops/bookings/{id}/refund-record`);
--   its `refund_id` is the operator's reference, unknown to the gateway.
alter table payments
    add column refund_retries int not null default 0,
    add column refund_recorded_by text,
    add column refund_note text;
