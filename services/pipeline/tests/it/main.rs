//! The Pipeline service's integration tests, one binary: a module per
//! area, the harness in `common`, data builders in `fixtures` and
//! `forecast_fixture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod contacts_feed;
mod deal_history;
mod deal_moves;
mod deal_search;
mod deals;
mod fixtures;
mod forecast_fixture;
mod forecasts;
mod hostile;
mod invoices;
mod orders;
mod ownership;
mod pipeline_stages;
mod pipelines;
mod products;
mod rates_quotas;
mod smoke;
mod team_visible;
