//! Development mode (`RAPPORT_DEV_MODE=true`, which `make run` and the
//! tests set): the signing key used when neither `AUTH_JWT_SECRET` nor
//! `AUTH_JWKS_FILE` is set, so `make run`, `rapport dev-token` and the
//! tests work unconfigured. Its secret is public: without the development
//! mode a service with no key refuses to start, and a deployment
//! configures a key of its own (the chart requires one).

/// The issuer of development tokens.
pub const DEV_ISSUER: &str = "rapport-dev";
/// The audience of development tokens.
pub const DEV_AUDIENCE: &str = "rapport";
/// The development signing secret. Never use it in production: set
/// `AUTH_JWT_SECRET` or `AUTH_JWKS_FILE`.
pub const DEV_SECRET: &str = "rapport-local-development-secret-do-not-use-in-production";
