-- Staff's booking lookup by phone (API.md, Round 2, "Theater staff"): phone numbers
-- are stored as typed; the lookup compares their digits (and a leading +).
--
-- Never edit this file once it has landed: add a new migration instead.
create index users_phone_digits on users (regexp_replace(coalesce(phone, ''), '[^0-9+]', '', 'g'));
