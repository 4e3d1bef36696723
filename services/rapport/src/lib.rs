//! The composition of Rapport's services: the one table of services
//! ([`registry`]) and running or migrating any set of them in one process
//! ([`serve`]). The `rapport` binary and the bench read both.

#[cfg(test)]
mod layering;
pub mod registry;
pub mod serve;
