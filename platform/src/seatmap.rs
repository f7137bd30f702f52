//! The live seat map of a show, as Redis holds it for browsing clients.
//!
//! The sequencer runner writes it after each commit; ingress reads it, and rebuilds
//! it from PostgreSQL when it is missing. It is compact (only the occupied seats: the
//! layout gives the rest) and versioned: the version is the highest
//! `booking_events.seq` of the show at the commit it describes, so it only grows,
//! across runners and restarts. Every write goes through one Lua script that stores
//! a map only when its version is greater than the stored one, so a slow or stale
//! writer (an old runner, a rebuild that read an older snapshot) can never replace a
//! newer map.

use crate::cache::Redis;
use contracts::ShowId;
use sqlx::PgPool;

/// The occupied seats of a show at one version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeatMap {
    /// Highest `booking_events.seq` of the show included (0: no event yet).
    pub version: i64,
    /// Seats of `held` or `payment_pending` bookings.
    pub held: Vec<String>,
    /// Seats of `confirmed` bookings.
    pub sold: Vec<String>,
}

/// Seat ids never contain a comma (`A12`), so a list is stored comma-joined.
const SEP: &str = ",";

fn join(seats: &[String]) -> String {
    seats.join(SEP)
}

fn split(s: &str) -> Vec<String> {
    s.split(SEP)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Stores each map whose version is greater than the stored one, and (re)sets the
/// key's TTL. KEYS: one seat-map hash per show. ARGV: the TTL in seconds, then per
/// key its version, held list and sold list. Returns 1 (stored) or 0 (refused) per key.
const STORE_IF_NEWER: &str = r"
local ttl = ARGV[1]
local out = {}
for i, key in ipairs(KEYS) do
  local at = 2 + (i - 1) * 3
  local version = tonumber(ARGV[at])
  local current = tonumber(redis.call('HGET', key, 'v'))
  if current == nil or version > current then
    redis.call('HSET', key, 'v', ARGV[at], 'h', ARGV[at + 1], 's', ARGV[at + 2])
    redis.call('EXPIRE', key, ttl)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
";

/// Writes `maps` (key, map) in one round trip; each is stored only if newer than
/// what Redis holds. Returns, per map, whether it was stored.
pub async fn store_if_newer(
    redis: &mut Redis,
    maps: &[(String, &SeatMap)],
    ttl_secs: u64,
) -> Result<Vec<bool>, redis::RedisError> {
    if maps.is_empty() {
        return Ok(vec![]);
    }
    let script = redis::Script::new(STORE_IF_NEWER);
    let mut call = script.prepare_invoke();
    call.arg(ttl_secs);
    for (key, map) in maps {
        call.key(key)
            .arg(map.version)
            .arg(join(&map.held))
            .arg(join(&map.sold));
    }
    let stored: Vec<i64> = call.invoke_async(redis).await?;
    Ok(stored.into_iter().map(|s| s == 1).collect())
}

/// The stored map, or `None` when there is none.
pub async fn load(redis: &mut Redis, key: &str) -> Result<Option<SeatMap>, redis::RedisError> {
    let (version, held, sold): (Option<i64>, Option<String>, Option<String>) = redis::cmd("HMGET")
        .arg(key)
        .arg("v")
        .arg("h")
        .arg("s")
        .query_async(redis)
        .await?;
    Ok(version.map(|version| SeatMap {
        version,
        held: split(held.as_deref().unwrap_or("")),
        sold: split(sold.as_deref().unwrap_or("")),
    }))
}

/// Removes the stored maps (after a failed write), so that the next read rebuilds
/// from PostgreSQL instead of serving a map that missed a commit.
pub async fn forget(redis: &mut Redis, keys: &[String]) -> Result<(), redis::RedisError> {
    if keys.is_empty() {
        return Ok(());
    }
    redis::cmd("DEL").arg(keys).query_async(redis).await
}

/// The show's map as PostgreSQL has it (see [`rebuild_many`]).
pub async fn rebuild(pool: &PgPool, show: ShowId) -> Result<SeatMap, sqlx::Error> {
    Ok(rebuild_many(pool, &[show])
        .await?
        .pop()
        .map(|(_, map)| map)
        .unwrap_or_default())
}

/// The shows' maps as PostgreSQL has them: live allocations by their booking's
/// status, and each version by the same definition the runner uses, all read in one
/// statement (one snapshot) so a version describes exactly its seats.
#[tracing::instrument(skip_all, fields(shows = shows.len()))]
pub async fn rebuild_many(
    pool: &PgPool,
    shows: &[ShowId],
) -> Result<Vec<(ShowId, SeatMap)>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = shows.iter().map(|s| s.0).collect();
    let rows: Vec<(uuid::Uuid, i64, Vec<String>, Vec<String>)> = sqlx::query_as(
        "select sh.id,
                (select coalesce(max(e.seq), 0) from booking_events e where e.show_id = sh.id),
                coalesce((select array_agg(s.seat_id order by s.seat_id)
                            from booking_seats s join bookings b on b.id = s.booking_id
                           where s.show_id = sh.id and s.released_at is null
                             and b.status in ('held', 'payment_pending')), '{}'),
                coalesce((select array_agg(s.seat_id order by s.seat_id)
                            from booking_seats s join bookings b on b.id = s.booking_id
                           where s.show_id = sh.id and s.released_at is null
                             and b.status = 'confirmed'), '{}')
           from unnest($1::uuid[]) as sh(id)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(show, version, held, sold)| {
            (
                ShowId(show),
                SeatMap {
                    version,
                    held,
                    sold,
                },
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_lists_round_trip_through_their_stored_form() {
        let seats = vec!["A1".to_owned(), "B12".to_owned()];
        assert_eq!(split(&join(&seats)), seats);
        assert!(split(&join(&[])).is_empty());
    }
}
