//! Authentication (bearer JWTs and API keys) and per-service role authorization for tonic
//! servers.
//!
//! * [`Verifier`] checks a JWT (HS256 shared secret, or RS256/ES256 keys from a JWKS file)
//!   or an API key ([`ApiKeys`], stored as SHA-256 digests) and turns it into a
//!   [`Principal`].
//! * [`Policy`] lists which [`Role`]s may call each RPC of one gRPC service.
//! * [`AuthLayer`] is a tower layer that enforces both in front of every RPC and stores the
//!   [`Principal`] in the request extensions, where handlers read it with [`principal`].
//!   [`AuthLayer::authenticate_unlisted`] lets calls of services without a policy through
//!   once authenticated (the gateway, which leaves authorization to the owning service).
//!
//! Every rejection is a `tonic::Status` carrying a `google.rpc.ErrorInfo` detail in the
//! [`ERROR_DOMAIN`] domain with one of the `REASON_*` reasons of this module.

mod api_keys;
pub mod dev;
mod env;
mod jwks;
mod jwt;
mod layer;
pub mod ownership;
mod policy;
mod remote;

#[cfg(test)]
mod jwt_tests;
#[cfg(test)]
mod layer_tests;
#[cfg(test)]
mod server_test;
#[cfg(test)]
mod test_support;

use std::collections::HashMap;
use std::fmt;

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

pub use api_keys::{API_KEY_PREFIX, ApiKeyEntry, ApiKeys, generate_key, hash_key};
pub use env::{DEV_MODE, MIN_SECRET_BYTES, config_from_env};
pub use jwt::{
    AuthConfig, AuthSetupError, DEFAULT_LEEWAY_SECONDS, DEFAULT_ROLES_CLAIM, DEFAULT_TEAMS_CLAIM, KeySource,
    MAX_LEEWAY_SECONDS, MAX_TEAMS, Verifier, is_team_id, mint_hs256, mint_hs256_for,
};
pub use layer::{AuthLayer, AuthService, split_path};
pub use ownership::{Fields, Owned, Ownership, ReadScope, ScopeColumns};
pub use policy::Policy;
pub use remote::{FetchError, JwksLocation, RemoteJwksConfig};

/// `google.rpc.ErrorInfo.domain` of every error produced by this module.
pub const ERROR_DOMAIN: &str = "rapport";
/// ErrorInfo reason: the request carried neither a bearer token nor an API key.
pub const REASON_MISSING_TOKEN: &str = "UNAUTHENTICATED_MISSING_TOKEN";
/// ErrorInfo reason: the bearer token (or the `authorization` header) is not acceptable.
pub const REASON_INVALID_TOKEN: &str = "UNAUTHENTICATED_INVALID_TOKEN";
/// ErrorInfo reason: the `x-api-key` header names no known API key.
pub const REASON_INVALID_API_KEY: &str = "UNAUTHENTICATED_INVALID_API_KEY";
/// ErrorInfo reason: the bearer token is correctly signed but past its `exp`.
pub const REASON_TOKEN_EXPIRED: &str = "UNAUTHENTICATED_TOKEN_EXPIRED";
/// ErrorInfo reason: the caller may not call this method (missing role, or the method is not
/// in any policy). Metadata: `method` (the gRPC path) and `required_roles` (comma separated).
pub const REASON_PERMISSION_DENIED_ROLE: &str = "PERMISSION_DENIED_ROLE";

/// A role a caller can hold. Tokens name roles in `snake_case` (see [`Role::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Full administrative access (`admin`). Never implied: policies list it explicitly.
    Admin,
    /// Sales manager (`sales_manager`).
    SalesManager,
    /// Sales representative (`sales_rep`).
    SalesRep,
    /// Marketing user (`marketing`).
    Marketing,
    /// Support agent (`support_agent`).
    SupportAgent,
    /// Support lead (`support_manager`): manages the support cases of their teams.
    SupportManager,
    /// Machine-to-machine integration (`integration`).
    Integration,
    /// Read-only user (`viewer`).
    Viewer,
}

impl Role {
    /// Every role, in declaration order. `&Role::ALL` is handy in a [`Policy`] for
    /// "any authenticated caller".
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::SalesManager,
        Role::SalesRep,
        Role::Marketing,
        Role::SupportAgent,
        Role::SupportManager,
        Role::Integration,
        Role::Viewer,
    ];

    /// The `snake_case` name used in tokens, e.g. `"sales_manager"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::SalesManager => "sales_manager",
            Role::SalesRep => "sales_rep",
            Role::Marketing => "marketing",
            Role::SupportAgent => "support_agent",
            Role::SupportManager => "support_manager",
            Role::Integration => "integration",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a `snake_case` role name (exact match, case sensitive); `None` if unknown.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub` claim.
    pub subject: String,
    /// Known roles from the token's roles claim, deduplicated, in token order.
    pub roles: Vec<Role>,
    /// The teams the caller belongs to (the token's teams claim, an API
    /// key's `teams`), deduplicated, in order; the first is the team a
    /// record the caller creates belongs to by default.
    pub teams: Vec<String>,
}

impl Principal {
    /// A principal without teams.
    pub fn new(subject: impl Into<String>, roles: Vec<Role>) -> Principal {
        Principal { subject: subject.into(), roles, teams: Vec::new() }
    }

    /// This principal in `teams` too.
    pub fn with_teams(mut self, teams: &[&str]) -> Principal {
        for team in teams {
            if !self.teams.iter().any(|held| held == team) {
                self.teams.push((*team).to_owned());
            }
        }
        self
    }

    /// True when the principal belongs to `team` (never for an empty team).
    pub fn in_team(&self, team: &str) -> bool {
        !team.is_empty() && self.teams.iter().any(|held| held == team)
    }

    /// True if the principal holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// True if the principal holds at least one of `roles` (false for an empty slice).
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|held| roles.contains(held))
    }
}

/// Why a request could not be authenticated. Never contains token or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `authorization` nor an `x-api-key` header was sent.
    #[error("missing bearer token")]
    MissingToken,
    /// The `x-api-key` header is not a known key (or not a single ASCII value).
    #[error("invalid API key")]
    InvalidApiKey,
    /// The `authorization` header is not `Bearer <token>`.
    #[error("malformed authorization header: {0}")]
    MalformedHeader(&'static str),
    /// The token is correctly signed but expired.
    #[error("bearer token expired")]
    Expired,
    /// The token is not acceptable; the text says why (signature, issuer, audience, ...).
    #[error("invalid bearer token: {0}")]
    Invalid(&'static str),
}

impl AuthError {
    /// The stable `ErrorInfo` reason for this error (one of the `REASON_*` constants).
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken => REASON_MISSING_TOKEN,
            AuthError::MalformedHeader(_) | AuthError::Invalid(_) => REASON_INVALID_TOKEN,
            AuthError::Expired => REASON_TOKEN_EXPIRED,
            AuthError::InvalidApiKey => REASON_INVALID_API_KEY,
        }
    }

    /// The `UNAUTHENTICATED` status for this error, with `ErrorInfo` details.
    pub fn to_status(&self) -> tonic::Status {
        tonic::Status::with_error_details(
            Code::Unauthenticated,
            self.to_string(),
            ErrorDetails::with_error_info(self.reason(), ERROR_DOMAIN, HashMap::new()),
        )
    }
}

impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        error.to_status()
    }
}

/// Builds the `PERMISSION_DENIED` status for a call of `path` (the full gRPC path) that needs
/// one of `required` (empty when no role may call it).
pub fn permission_denied(path: &str, required: &[Role]) -> tonic::Status {
    let required_roles = required.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(",");
    let message = if required.is_empty() {
        format!("{path} is not callable by any role")
    } else {
        format!("calling {path} requires one of the roles: {required_roles}")
    };
    let metadata = HashMap::from([
        ("method".to_owned(), path.to_owned()),
        ("required_roles".to_owned(), required_roles),
    ]);
    tonic::Status::with_error_details(
        Code::PermissionDenied,
        message,
        ErrorDetails::with_error_info(REASON_PERMISSION_DENIED_ROLE, ERROR_DOMAIN, metadata),
    )
}

/// The [`Principal`] that [`AuthLayer`] attached to `request`, or `UNAUTHENTICATED`
/// (reason [`REASON_MISSING_TOKEN`]) when there is none, e.g. the layer is not installed.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, tonic::Status> {
    request.extensions().get::<Principal>().ok_or_else(|| AuthError::MissingToken.to_status())
}
