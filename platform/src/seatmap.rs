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
    /// Places taken (held, being paid or sold) per general-admission zone, by zone
    /// id; a zone not listed has none taken. The layout gives each capacity.
    pub zones: Vec<(String, u32)>,
}

impl SeatMap {
    /// Places taken in `zone`.
    pub fn zone_taken(&self, zone: &str) -> u32 {
        self.zones
            .iter()
            .find(|(z, _)| z == zone)
            .map_or(0, |(_, n)| *n)
    }
}

/// Zone counts are stored as `floor:12,pit:3` (zone ids have no `:` or `,`).
fn join_zones(zones: &[(String, u32)]) -> String {
    zones
        .iter()
        .map(|(z, n)| format!("{z}:{n}"))
        .collect::<Vec<_>>()
        .join(SEP)
}

fn split_zones(s: &str) -> Vec<(String, u32)> {
    s.split(SEP)
        .filter_map(|p| {
            let (z, n) = p.split_once(':')?;
            Some((z.to_owned(), n.parse().ok()?))
        })
        .collect()
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
/// key its version, held list, sold list and zone counts. Returns 1 (stored) or 0
/// (refused) per key.
const STORE_IF_NEWER: &str = r"
local ttl = ARGV[1]
local out = {}
for i, key in ipairs(KEYS) do
  local at = 2 + (i - 1) * 4
  local version = tonumber(ARGV[at])
  local current = tonumber(redis.call('HGET', key, 'v'))
  if current == nil or version > current then
    redis.call('HSET', key, 'v', ARGV[at], 'h', ARGV[at + 1], 's', ARGV[at + 2], 'z', ARGV[at + 3])
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
            .arg(join(&map.sold))
            .arg(join_zones(&map.zones));
    }
    let stored: Vec<i64> = call.invoke_async(redis).await?;
    Ok(stored.into_iter().map(|s| s == 1).collect())
}

/// The stored map, or `None` when there is none.
pub async fn load(redis: &mut Redis, key: &str) -> Result<Option<SeatMap>, redis::RedisError> {
    type Fields = (Option<i64>, Option<String>, Option<String>, Option<String>);
    let (version, held, sold, zones): Fields = redis::cmd("HMGET")
        .arg(key)
        .arg("v")
        .arg("h")
        .arg("s")
        .arg("z")
        .query_async(redis)
        .await?;
    Ok(version.map(|version| SeatMap {
        version,
        held: split(held.as_deref().unwrap_or("")),
        sold: split(sold.as_deref().unwrap_or("")),
        zones: split_zones(zones.as_deref().unwrap_or("")),
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
    type Row = (
        uuid::Uuid,
        i64,
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Vec<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select sh.id,
                (select coalesce(max(e.seq), 0) from booking_events e where e.show_id = sh.id),
                coalesce((select array_agg(s.seat_id order by s.seat_id)
                            from booking_seats s join bookings b on b.id = s.booking_id
                           where s.show_id = sh.id and s.released_at is null
                             and b.status in ('held', 'payment_pending')), '{}'),
                coalesce((select array_agg(s.seat_id order by s.seat_id)
                            from booking_seats s join bookings b on b.id = s.booking_id
                           where s.show_id = sh.id and s.released_at is null
                             and b.status = 'confirmed'), '{}'),
                coalesce((select array_agg(z.zone_id order by z.zone_id)
                            from show_zones z where z.show_id = sh.id and z.taken > 0), '{}'),
                coalesce((select array_agg(z.taken::int8 order by z.zone_id)
                            from show_zones z where z.show_id = sh.id and z.taken > 0), '{}')
           from unnest($1::uuid[]) as sh(id)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(show, version, held, sold, zone_ids, taken)| {
            let zones = zone_ids
                .into_iter()
                .zip(taken)
                .map(|(z, n)| (z, u32::try_from(n).unwrap_or(0)))
                .collect();
            (
                ShowId(show),
                SeatMap {
                    version,
                    held,
                    sold,
                    zones,
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
        let zones = vec![("floor".to_owned(), 12), ("pit".to_owned(), 3)];
        assert_eq!(split_zones(&join_zones(&zones)), zones);
        assert!(split_zones("").is_empty());
    }
}
