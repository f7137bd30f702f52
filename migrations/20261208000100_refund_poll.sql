-- The saga polls the gateway about every refund not settled yet (webhooks are a
-- hint, not the only channel): find them without scanning every payment.
--
-- Never edit this file once it has landed: add a new migration instead.
create index payments_refund_open on payments (updated_at) where refund_status = 'requested';
