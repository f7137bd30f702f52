-- A webhook's dedupe row is committed before its event is published to the saga:
-- `published_at` says the publish was confirmed. A delivery whose row exists but was
-- never published (ingress died in between, or the publish failed) is published
-- again by the gateway's next retry instead of being taken for a duplicate; the saga
-- handles an event twice harmlessly (it asks the gateway, and its commands have
-- fixed message ids). Rows of before this column are taken as published.
alter table payment_webhooks add column published_at timestamptz;
update payment_webhooks set published_at = received_at;
