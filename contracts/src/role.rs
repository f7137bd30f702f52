//! Who a caller is to the platform: the role carried in every access token and
//! stored in `users.role`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Admin,
    Operator,
    /// Door staff: check tickets in and look bookings up, always within the theaters
    /// granted to them (`theater_grants`).
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Staff => "staff",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "customer" => Ok(Role::Customer),
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "staff" => Ok(Role::Staff),
            other => Err(format!(
                "unknown role {other:?} (customer, admin, operator or staff)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_back_from_its_name() {
        for role in [Role::Customer, Role::Admin, Role::Operator, Role::Staff] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
