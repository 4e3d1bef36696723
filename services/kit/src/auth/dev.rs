//! Development mode: the signing key `rapport serve` uses when neither
//! `AUTH_JWT_SECRET` nor `AUTH_JWKS_FILE` is set, so `make run`, `rapport
//! dev-token` and the tests work unconfigured. Its secret is public: a
//! deployment must configure a key of its own (the chart does).

/// The issuer of development tokens.
pub const DEV_ISSUER: &str = "rapport-dev";
/// The audience of development tokens.
pub const DEV_AUDIENCE: &str = "rapport";
/// The development signing secret. Never use it in production: set
/// `AUTH_JWT_SECRET` or `AUTH_JWKS_FILE`.
pub const DEV_SECRET: &str = "rapport-local-development-secret-do-not-use-in-production";
