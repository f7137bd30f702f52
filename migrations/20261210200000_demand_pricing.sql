-- Demand pricing (issue 15): a show's optional price tiers, as
-- `{"tiers": [{"sold_share": 0.7, "change_permille": 100}, {"before_start_secs": 7200, "change_permille": -200}]}`
-- (contracts::pricing). Validated by ingress and again by the sequencer; null: every
-- seat at its base price.
alter table shows add column pricing jsonb
    check (pricing is null or jsonb_typeof(pricing -> 'tiers') = 'array');
