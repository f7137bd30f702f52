//! Demand pricing: a show's optional price tiers, by the share of its places sold
//! and by the time left before it starts. The rule is here, pure, so that the
//! sequencer (which fixes the price of every hold) and the seat map (which shows
//! the price the next hold would get) compute it the same way.
//!
//! - A **sold tier** (`sold_share`) is reached when the share of the show's places
//!   (seats that are not blocked in the layout, plus every zone's capacity) held,
//!   being paid or sold *before* the request reaches `sold_share`. Of the sold tiers
//!   reached, the one with the highest `sold_share` applies.
//! - A **time tier** (`before_start_secs`) is reached when the request is issued at
//!   most `before_start_secs` before the show starts (by the command's own
//!   timestamp, never a clock). Of the time tiers reached, the one with the smallest
//!   `before_start_secs` applies.
//! - The two changes add up (in thousandths); a seat then costs
//!   `base * (1000 + change) / 1000`, rounded down, and never less than zero.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most tiers one show may carry.
pub const MAX_TIERS: usize = 20;
/// Largest increase a tier may ask for: +1000% (`10000` thousandths).
pub const MAX_CHANGE_PERMILLE: i32 = 10_000;
/// Longest time-to-start a tier may name: a year.
pub const MAX_BEFORE_START_SECS: i64 = 366 * 24 * 3600;

/// A share between 0 and 1, kept in thousandths so that states compare exactly;
/// written as a number (`0.7`) on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Share(pub u16);

impl Share {
    pub fn permille(self) -> u16 {
        self.0
    }
}

impl Serialize for Share {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(f64::from(self.0) / 1000.0)
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let x = f64::deserialize(d)?;
        if !x.is_finite() || x <= 0.0 || x > 1.0 {
            return Err(serde::de::Error::custom(format!(
                "sold_share must be above 0 and at most 1, not {x}"
            )));
        }
        // Thousandths: 0.7 is 700 exactly, whatever its binary form.
        Ok(Share((x * 1000.0).round().clamp(1.0, 1000.0) as u16))
    }
}

/// One price step of a demand-priced show: exactly one of `sold_share` and
/// `before_start_secs`, and the change it makes, in thousandths of the base price
/// (`100` is +10%, `-200` is -20%).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"sold_share": 0.7, "change_permille": 100}))]
pub struct PriceTier {
    /// Reached once this share of the show's places is held or sold (0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub sold_share: Option<Share>,
    /// Reached once the show starts within this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_start_secs: Option<i64>,
    /// The change of the base price, in thousandths (-1000 to 10000).
    pub change_permille: i32,
}

/// A show's demand pricing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"tiers": [{"sold_share": 0.7, "change_permille": 100}, {"before_start_secs": 7200, "change_permille": -200}]}))]
pub struct Pricing {
    pub tiers: Vec<PriceTier>,
}

impl Pricing {
    /// Refuses no tiers or too many, a tier with both or neither threshold, a
    /// threshold out of range, a change out of range, and two tiers of one kind at
    /// one threshold.
    pub fn validate(&self) -> Result<(), String> {
        if self.tiers.is_empty() || self.tiers.len() > MAX_TIERS {
            return Err(format!(
                "pricing needs 1 to {MAX_TIERS} tiers, not {}",
                self.tiers.len()
            ));
        }
        let mut shares = std::collections::BTreeSet::new();
        let mut secs = std::collections::BTreeSet::new();
        for (i, t) in self.tiers.iter().enumerate() {
            if !(-1000..=MAX_CHANGE_PERMILLE).contains(&t.change_permille) {
                return Err(format!(
                    "tier {i}: change_permille must be between -1000 and {MAX_CHANGE_PERMILLE}"
                ));
            }
            match (t.sold_share, t.before_start_secs) {
                (Some(share), None) => {
                    if !shares.insert(share) {
                        return Err(format!("tier {i}: two tiers at one sold_share"));
                    }
                }
                (None, Some(s)) => {
                    if !(1..=MAX_BEFORE_START_SECS).contains(&s) {
                        return Err(format!(
                            "tier {i}: before_start_secs must be between 1 and {MAX_BEFORE_START_SECS}"
                        ));
                    }
                    if !secs.insert(s) {
                        return Err(format!("tier {i}: two tiers at one before_start_secs"));
                    }
                }
                _ => {
                    return Err(format!(
                        "tier {i}: give exactly one of sold_share and before_start_secs"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The change in force, in thousandths, when `taken` of `capacity` places are
    /// held or sold and the show starts in `to_start_ms` (None: its start is not
    /// known, so no time tier applies).
    pub fn change_permille(&self, taken: u64, capacity: u64, to_start_ms: Option<i64>) -> i32 {
        let by_share = self
            .tiers
            .iter()
            .filter_map(|t| t.sold_share.map(|s| (s, t.change_permille)))
            .filter(|(s, _)| {
                capacity > 0 && u128::from(taken) * 1000 >= u128::from(s.0) * u128::from(capacity)
            })
            .max_by_key(|(s, _)| *s)
            .map_or(0, |(_, c)| c);
        let by_time = to_start_ms
            .and_then(|left| {
                self.tiers
                    .iter()
                    .filter_map(|t| t.before_start_secs.map(|s| (s, t.change_permille)))
                    .filter(|(s, _)| i128::from(left) <= i128::from(*s) * 1000)
                    .min_by_key(|(s, _)| *s)
            })
            .map_or(0, |(_, c)| c);
        by_share.saturating_add(by_time)
    }
}

/// `base` changed by `change_permille` thousandths, rounded down, never below 0.
pub fn adjust(base: i64, change_permille: i32) -> i64 {
    let factor = (1000 + i128::from(change_permille)).max(0);
    let v = (i128::from(base) * factor).div_euclid(1000);
    i64::try_from(v).unwrap_or(i64::MAX).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing(json: &str) -> Pricing {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_sold_tier_steps_at_its_share_exactly() {
        let p = pricing(r#"{"tiers":[{"sold_share":0.5,"change_permille":100}]}"#);
        p.validate().unwrap();
        assert_eq!(p.change_permille(4, 10, None), 0);
        assert_eq!(p.change_permille(5, 10, None), 100);
        assert_eq!(adjust(1200, 100), 1320);
        assert_eq!(adjust(1200, 0), 1200);
        assert_eq!(adjust(999, -1000), 0);
        assert_eq!(adjust(1000, -2000), 0);
    }

    #[test]
    fn the_highest_share_and_the_nearest_time_win_and_add_up() {
        let p = pricing(
            r#"{"tiers":[{"sold_share":0.3,"change_permille":50},{"sold_share":0.7,"change_permille":200},
                {"before_start_secs":86400,"change_permille":-100},{"before_start_secs":3600,"change_permille":-300}]}"#,
        );
        p.validate().unwrap();
        assert_eq!(p.change_permille(8, 10, None), 200);
        assert_eq!(p.change_permille(3, 10, Some(90_000_000)), 50);
        assert_eq!(p.change_permille(3, 10, Some(86_400_000)), -50);
        assert_eq!(p.change_permille(0, 10, Some(3_600_000)), -300);
    }

    #[test]
    fn bad_tiers_are_refused() {
        for bad in [
            r#"{"tiers":[]}"#,
            r#"{"tiers":[{"change_permille":100}]}"#,
            r#"{"tiers":[{"sold_share":0.5,"before_start_secs":60,"change_permille":100}]}"#,
            r#"{"tiers":[{"sold_share":0.5,"change_permille":-1001}]}"#,
            r#"{"tiers":[{"sold_share":0.5,"change_permille":1},{"sold_share":0.5,"change_permille":2}]}"#,
            r#"{"tiers":[{"before_start_secs":0,"change_permille":100}]}"#,
        ] {
            assert!(pricing(bad).validate().is_err(), "{bad}");
        }
        for unparsable in [
            r#"{"tiers":[{"sold_share":1.5,"change_permille":100}]}"#,
            r#"{"tiers":[{"sold_share":0,"change_permille":100}]}"#,
        ] {
            assert!(serde_json::from_str::<Pricing>(unparsable).is_err());
        }
    }

    #[test]
    fn a_share_has_a_stable_wire_form() {
        let p = pricing(r#"{"tiers":[{"sold_share":0.7,"change_permille":100}]}"#);
        assert_eq!(p.tiers[0].sold_share, Some(Share(700)));
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"tiers":[{"sold_share":0.7,"change_permille":100}]}"#
        );
    }
}
