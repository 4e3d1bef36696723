//! ForecastService exchange rates and quotas, and a randomized cross-check
//! of the SQL forecast sums against `rapport_kit::money` in Rust.

use crate::common;
use crate::forecast_fixture;

use std::collections::BTreeMap;

use chrono::Datelike;
use common::{TestApp, violated_fields};
use forecast_fixture::*;
use rapport_kit::auth::Role;
use rapport_kit::money::{self, Currency, Money, Percent, Rate};
use rapport_proto::pipeline::v1::*;
use tonic::Code;

async fn change_rows(pool: &sqlx::PgPool, resource_type: &str, id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM change_log WHERE resource_type = $1 AND resource_id = $2")
        .bind(resource_type)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn exchange_rates_are_upserted_logged_and_listed_newest_first() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let first = set_rate(&mut clients, "USD", "EUR", "0.92230", day(2026, 1, 1)).await;
    assert_eq!(first.rate, "0.9223");
    assert_eq!(first.actor, "admin-1");
    assert!(first.update_time.is_some());
    let replaced = set_rate(&mut clients, "USD", "EUR", "0.95", day(2026, 1, 1)).await;
    assert_eq!(replaced.rate, "0.95");
    set_rate(&mut clients, "USD", "EUR", "1.0000000001", day(2026, 2, 1)).await;
    set_rate(&mut clients, "EUR", "JPY", "160", day(2025, 6, 1)).await;
    let all = clients
        .forecasts
        .list_exchange_rates(ListExchangeRatesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<_> =
        all.exchange_rates.iter().map(|r| (r.from_currency_code.as_str(), r.rate.as_str())).collect();
    assert_eq!(listed, [("USD", "1.0000000001"), ("USD", "0.95"), ("EUR", "160")]);
    let only = ListExchangeRatesRequest { from_currency_code: "EUR".into(), to_currency_code: "JPY".into() };
    let only = clients.forecasts.list_exchange_rates(only).await.unwrap().into_inner();
    assert_eq!(only.exchange_rates.len(), 1);
    assert_eq!(change_rows(&app.pool(), "rapport.pipeline.v1.ExchangeRate", "USD/EUR/2026-01-01").await, 2);
}

#[tokio::test]
async fn bad_rates_and_quotas_are_refused_naming_fields() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let rate = ExchangeRate {
        from_currency_code: "usd".into(),
        to_currency_code: "XXQ".into(),
        rate: "0.12345678901".into(),
        effective_date: date(2026, 2, 30),
        ..Default::default()
    };
    let status = clients
        .forecasts
        .set_exchange_rate(SetExchangeRateRequest { exchange_rate: Some(rate) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        [
            "exchange_rate.from_currency_code",
            "exchange_rate.to_currency_code",
            "exchange_rate.rate",
            "exchange_rate.effective_date"
        ]
    );
    let same = ExchangeRate {
        from_currency_code: "EUR".into(),
        to_currency_code: "EUR".into(),
        rate: "-1".into(),
        effective_date: date(2026, 2, 1),
        ..Default::default()
    };
    let status = clients
        .forecasts
        .set_exchange_rate(SetExchangeRateRequest { exchange_rate: Some(same) })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["exchange_rate.to_currency_code", "exchange_rate.rate"]);
    let quota =
        Quota { owner_id: " ".into(), year: 0, month: 13, amount: money("EUR", -5), update_time: None };
    let status = clients.forecasts.set_quota(SetQuotaRequest { quota: Some(quota) }).await.unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["quota.owner_id", "quota.year", "quota.month", "quota.amount.minor_units"]
    );
    let status = clients
        .forecasts
        .list_quotas(ListQuotasRequest { year: 2026, month: 13, owner_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["month"]);
}

#[tokio::test]
async fn roles_guard_rates_and_quotas() {
    let app = TestApp::spawn().await;
    let mut rep = app.clients_as("rep-1", &[Role::SalesRep]);
    let rate = ExchangeRate {
        from_currency_code: "USD".into(),
        to_currency_code: "EUR".into(),
        rate: "0.9".into(),
        effective_date: date(2026, 1, 1),
        ..Default::default()
    };
    let status = rep
        .forecasts
        .set_exchange_rate(SetExchangeRateRequest { exchange_rate: Some(rate) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let quota =
        Quota { owner_id: "rep-1".into(), year: 2026, month: 1, amount: money("EUR", 1), update_time: None };
    let status = rep.forecasts.set_quota(SetQuotaRequest { quota: Some(quota.clone()) }).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let mut manager = app.clients_as("boss", &[Role::SalesManager]);
    manager.forecasts.set_quota(SetQuotaRequest { quota: Some(quota) }).await.unwrap();
}

#[tokio::test]
async fn quotas_are_upserted_logged_and_listed_by_owner_then_month() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    set_quota(&mut clients, "bob", 2026, 3, "EUR", 300).await;
    set_quota(&mut clients, "alice", 2026, 2, "USD", 200).await;
    set_quota(&mut clients, "alice", 2026, 1, "EUR", 100).await;
    let replaced = set_quota(&mut clients, "alice", 2026, 1, "JPY", 0).await;
    assert_eq!(replaced.amount, money("JPY", 0));
    set_quota(&mut clients, "alice", 2027, 1, "EUR", 999).await;
    let list = |month: i32, owner: &str| ListQuotasRequest { year: 2026, month, owner_id: owner.into() };
    let year = clients.forecasts.list_quotas(list(0, "")).await.unwrap().into_inner().quotas;
    let keys: Vec<_> =
        year.iter().map(|q| (q.owner_id.as_str(), q.month, q.amount.as_ref().unwrap().minor_units)).collect();
    assert_eq!(keys, [("alice", 1, 0), ("alice", 2, 200), ("bob", 3, 300)]);
    let march = clients.forecasts.list_quotas(list(3, "")).await.unwrap().into_inner().quotas;
    assert_eq!(march.len(), 1);
    let alice = clients.forecasts.list_quotas(list(0, "alice")).await.unwrap().into_inner().quotas;
    assert_eq!(alice.len(), 2);
    assert_eq!(change_rows(&app.pool(), "rapport.pipeline.v1.Quota", "alice/2026-01").await, 2);
}

/// A small deterministic generator (no extra dependency).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[tokio::test]
async fn sql_sums_equal_kit_money_on_random_deals() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let pool = app.pool();
    let pipeline = pipeline(&pool, "Random", true).await;
    let stage = stage(&pool, pipeline, "Open", 35, "OPEN", 1).await;
    // (from, to, rate, effective): direct rates into EUR, inverse ones out of it.
    let rates = [
        ("USD", "EUR", "0.9137", day(2026, 1, 1)),
        ("USD", "EUR", "0.8765432109", day(2026, 2, 10)),
        ("EUR", "JPY", "161.37", day(2026, 1, 1)),
        ("EUR", "JPY", "3", day(2026, 3, 3)),
        ("KWD", "EUR", "3.0125", day(2026, 1, 1)),
        ("EUR", "GBP", "0.8555", day(2026, 1, 1)),
    ];
    for (from, to, rate, effective) in rates {
        set_rate(&mut clients, from, to, rate, effective).await;
    }
    let eur = Currency::parse("c", "EUR").unwrap();
    let mut random = Lcg(42);
    let codes = ["EUR", "USD", "JPY", "KWD", "GBP"];
    let mut expected: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for _ in 0..200 {
        let code = codes[random.below(5) as usize];
        let amount = random.below(10_000_000) as i64 + if random.below(4) == 0 { 5 } else { 0 };
        let on = day(2026, 1, 1) + chrono::TimeDelta::days(random.below(90) as i64);
        let probability = random.below(101) as i16;
        DealRow::open(pipeline, stage, "rep", on)
            .amount(code, amount)
            .probability(probability)
            .insert(&pool)
            .await;
        let from = Currency::parse("c", code).unwrap();
        let latest = |f: &str, t: &str| {
            rates
                .iter()
                .filter(|r| r.0 == f && r.1 == t && r.3 <= on)
                .max_by_key(|r| r.3)
                .map(|r| Rate::parse("r", r.2).unwrap())
        };
        let original = Money::new(from, amount);
        let converted = if code == "EUR" {
            original
        } else if let Some(rate) = latest(code, "EUR") {
            money::convert(original, rate, eur).unwrap()
        } else {
            money::convert_inverse(original, latest("EUR", code).unwrap(), eur).unwrap()
        };
        let weighted = money::percent_of(converted, Percent::whole("p", i64::from(probability)).unwrap());
        let month = format!("{}-{:02}", on.year(), on.month());
        let entry = expected.entry(month).or_default();
        entry.0 += 1;
        entry.1 += converted.minor_units();
        entry.2 += weighted.minor_units();
    }
    let result = clients
        .forecasts
        .get_forecast(request((2026, 1, 1), (2026, 3, 31), ForecastGrouping::Month))
        .await
        .unwrap()
        .into_inner();
    let actual: BTreeMap<String, (i64, i64, i64)> =
        result.groups.iter().map(|g| (g.key.clone(), totals(g.figures.as_ref().unwrap()))).collect();
    assert_eq!(actual, expected);
}
