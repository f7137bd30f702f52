-- Per-user limits (issue 15): an event may cap the tickets one user holds or has
-- bought for any one of its shows. The sequencer enforces it in the show's
-- partition, so parallel requests of one user cannot pass it together.
alter table movies add column max_tickets_per_user integer
    check (max_tickets_per_user between 1 and 100);
