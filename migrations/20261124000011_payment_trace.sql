-- The W3C traceparent of the booking a payment belongs to, so that the gateway's
-- webhooks (which carry no trace of ours) continue the booking's trace.
alter table payments add column traceparent text;
