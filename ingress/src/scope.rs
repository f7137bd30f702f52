//! Theater scopes (API.md, Round 2, "Theater staff"): an admin or staff member may
//! be limited to the theaters granted to them (`theater_grants`); a platform admin
//! (an admin with no scope) and operators reach every theater.
//!
//! Every scoped route takes an [`Access`] (the caller and their [`Scope`]) and asks it
//! before touching a theater's resource: [`Access::theater`], [`Access::show`],
//! [`Access::screen`] answer `403` for another theater's, and list queries bind
//! [`Scope::theaters`] as a filter.
//!
//! # Why the scope is looked up, not carried in the access token
//!
//! A grant that is revoked must stop working soon: a door person who leaves, an
//! admin moved to another theater. Access tokens live `auth.access_token_ttl_secs`
//! (15 minutes by default) and cannot be recalled, so a scope inside the token would
//! outlive its revocation by up to that long, and a token minted before a grant would
//! miss it. Looking the scope up costs one indexed query per account, which a small
//! in-process cache ([`ScopeCache`], `door.scope_cache_ttl_ms`, 5 s by default) makes
//! rare: a revocation takes effect on every ingress within that TTL, without any
//! cross-instance invalidation. The role stays in the token (it predates scopes and
//! every layer reads it without IO).
//!
//! Revoking an admin's last theater leaves an account that manages nothing: whether
//! an account is scoped at all is its own column (`users.theater_scoped`), so an
//! empty grant list never reads as "platform admin". Staff are always scoped.

use crate::auth::{Caller, Role};
use crate::memo::Memo;
use crate::problem::ApiError;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

/// Which theaters an account may manage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every theater: platform admins and operators.
    All,
    /// Only these (possibly none).
    Theaters(Arc<BTreeSet<Uuid>>),
}

impl Scope {
    pub fn allows(&self, theater: Uuid) -> bool {
        match self {
            Scope::All => true,
            Scope::Theaters(ids) => ids.contains(&theater),
        }
    }

    /// The theaters to filter a list by: `None` means every theater (bind it as a
    /// nullable `uuid[]`: `($n::uuid[] is null or theater_id = any($n))`).
    pub fn theaters(&self) -> Option<Vec<Uuid>> {
        match self {
            Scope::All => None,
            Scope::Theaters(ids) => Some(ids.iter().copied().collect()),
        }
    }
}

/// Scopes by (account, role), each trusted for `door.scope_cache_ttl_ms`.
pub type ScopeCache = Memo<(Uuid, Role), Scope>;

/// Most cached scopes (one small set per active staff account).
pub const SCOPE_CACHE_MAX: usize = 10_000;

/// Whether `caller` may read a booking of `show` that is not theirs: platform admins
/// and operators may read any; a theater-scoped admin only those of its theaters'
/// shows; customers and door staff none (door staff check tickets in through
/// `/v1/checkins`, which checks the scope itself).
pub async fn reads_others_bookings(
    scopes: &ScopeCache,
    db: &sqlx::PgPool,
    caller: Caller,
    show: Uuid,
) -> Result<bool, ApiError> {
    if !caller.is_staff() {
        return Ok(false);
    }
    let scope = scopes
        .get_or_try_load((caller.user_id.0, caller.role), || load(db, caller))
        .await?;
    if let Scope::All = scope {
        return Ok(true);
    }
    let theater: Option<Uuid> = sqlx::query_scalar(
        "select sc.theater_id from shows s join screens sc on sc.id = s.screen_id where s.id = $1",
    )
    .bind(show)
    .fetch_optional(db)
    .await?;
    Ok(theater.is_some_and(|t| scope.allows(t)))
}

/// The scope of `caller`, from the database.
async fn load(db: &sqlx::PgPool, caller: Caller) -> Result<Scope, ApiError> {
    let scoped_role = match caller.role {
        Role::Operator => return Ok(Scope::All),
        Role::Customer => return Ok(Scope::Theaters(Arc::default())),
        Role::Admin => false,
        Role::Staff => true,
    };
    let scoped: Option<bool> = sqlx::query_scalar("select theater_scoped from users where id = $1")
        .bind(caller.user_id.0)
        .fetch_optional(db)
        .await?;
    // An admin token whose account has no row (minted by `bookctl` or a test before
    // any grant existed) stays what it always was: a platform admin.
    if !scoped_role && !scoped.unwrap_or(false) {
        return Ok(Scope::All);
    }
    let ids: Vec<Uuid> =
        sqlx::query_scalar("select theater_id from theater_grants where user_id = $1")
            .bind(caller.user_id.0)
            .fetch_all(db)
            .await?;
    Ok(Scope::Theaters(Arc::new(ids.into_iter().collect())))
}

/// The caller of a scoped route with their scope.
#[derive(Debug, Clone)]
pub struct Access {
    pub caller: Caller,
    pub scope: Scope,
}

impl<S> FromRequestParts<S> for Access
where
    S: Send + Sync,
    crate::auth::Authenticator: FromRef<S>,
    ScopeCache: FromRef<S>,
    sqlx::PgPool: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let db = sqlx::PgPool::from_ref(state);
        let scope = ScopeCache::from_ref(state)
            .get_or_try_load((caller.user_id.0, caller.role), || load(&db, caller))
            .await?;
        Ok(Access { caller, scope })
    }
}

impl Access {
    /// `Ok` when the caller manages `theater`, else `403`.
    pub fn theater(&self, theater: Uuid) -> Result<(), ApiError> {
        if self.scope.allows(theater) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// Only a platform admin (or operator): creating theaters and movies, which
    /// belong to no one theater.
    pub fn platform(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::All => Ok(()),
            Scope::Theaters(_) => Err(ApiError::Forbidden),
        }
    }

    /// The theater of `show`, when the caller manages it: `404` for an unknown
    /// show, `403` for another theater's.
    pub async fn show(&self, db: &sqlx::PgPool, show: Uuid) -> Result<Uuid, ApiError> {
        let theater: Option<Uuid> = sqlx::query_scalar(
            "select sc.theater_id from shows s join screens sc on sc.id = s.screen_id where s.id = $1",
        )
        .bind(show)
        .fetch_optional(db)
        .await?;
        let theater =
            theater.ok_or_else(|| ApiError::NotFound(format!("show {show} does not exist")))?;
        self.theater(theater)?;
        Ok(theater)
    }

    /// The theater of `screen`, when the caller manages it (`404` / `403` as for
    /// [`Access::show`]).
    pub async fn screen(&self, db: &sqlx::PgPool, screen: Uuid) -> Result<Uuid, ApiError> {
        let theater: Option<Uuid> =
            sqlx::query_scalar("select theater_id from screens where id = $1")
                .bind(screen)
                .fetch_optional(db)
                .await?;
        let theater =
            theater.ok_or_else(|| ApiError::NotFound(format!("screen {screen} does not exist")))?;
        self.theater(theater)?;
        Ok(theater)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_allows_only_its_theaters_and_all_allows_every_one() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let scoped = Scope::Theaters(Arc::new([a].into_iter().collect()));
        assert!(scoped.allows(a) && !scoped.allows(b));
        assert_eq!(scoped.theaters(), Some(vec![a]));
        assert!(Scope::All.allows(b));
        assert_eq!(Scope::All.theaters(), None);
        let none = Scope::Theaters(Arc::default());
        assert!(!none.allows(a));
        assert_eq!(none.theaters(), Some(vec![]));
    }
}
