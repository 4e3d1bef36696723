//! ForecastService forecasts and summaries, checked against hand-computed
//! figures (reporting currency EUR unless said otherwise).

use crate::common;
use crate::forecast_fixture;

use common::{Clients, TestApp, reason, violated_fields};
use forecast_fixture::*;
use rapport_kit::auth::Role;
use rapport_proto::pipeline::v1::*;
use tonic::Code;

struct Seed {
    pipeline: uuid::Uuid,
    qualify: uuid::Uuid,
    propose: uuid::Uuid,
}

/// The fixture. Rates: USD→EUR 0.9 from 2026-01-01 and 0.8 from 2026-02-15;
/// only EUR→JPY 160 (JPY converts by the inverse); KWD→EUR 3.0125.
/// In 2026-01-01..2026-03-31 (converted, weighted):
///  1 alice  1000.00 EUR  Jan 10 Qualify 20 %  PIPELINE   100000, 20000
///  2 alice   123.45 USD  Feb 14 Propose 60 %  COMMIT      11111 (11110.5), 6667 (6666.6); team bob
///  3 bob     123.45 USD  Feb 15 Propose 55 %  BEST_CASE    9876 (at 0.8), 5432 (5431.8)
///  4 bob       1000 JPY  Mar 01 Qualify 20 %  PIPELINE      625 (1000/160), 125
///  5 carol    1.001 KWD  Mar 20 Qualify 33 %  COMMIT        302 (3.0155125), 100 (99.66); team carol
///  6 alice   500.00 EUR  won Feb 01 10:00 UTC CLOSED      50000, 50000
///  7 bob     200.00 EUR  Jan 20 Propose       OMITTED     20000 (category only)
/// Left out: a lost deal, a deal expected in April, one won 2025-12-31
/// 23:30 UTC, a deleted deal.
async fn seed(app: &TestApp, clients: &mut Clients) -> Seed {
    let pool = app.pool();
    let pipeline = pipeline(&pool, "Sales", true).await;
    let qualify = stage(&pool, pipeline, "Qualify", 20, "OPEN", 1).await;
    let propose = stage(&pool, pipeline, "Propose", 60, "OPEN", 2).await;
    let won = stage(&pool, pipeline, "Won", 100, "WON", 3).await;
    let lost = stage(&pool, pipeline, "Lost", 0, "LOST", 4).await;
    set_rate(clients, "USD", "EUR", "0.9", day(2026, 1, 1)).await;
    set_rate(clients, "USD", "EUR", "0.8", day(2026, 2, 15)).await;
    set_rate(clients, "EUR", "JPY", "160", day(2025, 12, 1)).await;
    set_rate(clients, "KWD", "EUR", "3.0125", day(2026, 1, 1)).await;
    let deals = [
        DealRow::open(pipeline, qualify, "alice", day(2026, 1, 10)).amount("EUR", 100_000),
        DealRow::open(pipeline, propose, "alice", day(2026, 2, 14))
            .amount("USD", 12_345)
            .category("COMMIT")
            .team(&["bob"]),
        DealRow::open(pipeline, propose, "bob", day(2026, 2, 15))
            .amount("USD", 12_345)
            .category("BEST_CASE")
            .probability(55),
        DealRow::open(pipeline, qualify, "bob", day(2026, 3, 1)).amount("JPY", 1000),
        DealRow::open(pipeline, qualify, "carol", day(2026, 3, 20))
            .amount("KWD", 1001)
            .category("COMMIT")
            .probability(33)
            .team(&["carol"]),
        DealRow::open(pipeline, qualify, "alice", day(2026, 5, 1)).amount("EUR", 50_000).closed(
            "WON",
            won,
            at(2026, 2, 1, 10, 0),
        ),
        DealRow::open(pipeline, propose, "bob", day(2026, 1, 20)).amount("EUR", 20_000).category("OMITTED"),
        DealRow::open(pipeline, qualify, "carol", day(2026, 2, 2)).amount("EUR", 30_000).closed(
            "LOST",
            lost,
            at(2026, 2, 2, 9, 0),
        ),
        DealRow::open(pipeline, qualify, "alice", day(2026, 4, 5)).amount("EUR", 70_000),
        DealRow::open(pipeline, qualify, "alice", day(2026, 1, 5)).amount("EUR", 80_000).closed(
            "WON",
            won,
            at(2025, 12, 31, 23, 30),
        ),
        DealRow::open(pipeline, qualify, "alice", day(2026, 1, 5)).amount("EUR", 90_000).deleted(),
    ];
    for deal in &deals {
        deal.insert(&pool).await;
    }
    // alice: 400.00 EUR in January + 500.00 USD in February (at 0.9: 450.00 EUR);
    // bob: 160000 JPY in March (1000.00 EUR); dave: 100.00 EUR, no deals.
    set_quota(clients, "alice", 2026, 1, "EUR", 40_000).await;
    set_quota(clients, "alice", 2026, 2, "USD", 50_000).await;
    set_quota(clients, "alice", 2026, 4, "EUR", 99_999).await;
    set_quota(clients, "bob", 2026, 3, "JPY", 160_000).await;
    set_quota(clients, "dave", 2026, 1, "EUR", 10_000).await;
    Seed { pipeline, qualify, propose }
}

const Q1: ((i32, i32, i32), (i32, i32, i32)) = ((2026, 1, 1), (2026, 3, 31));

async fn forecast(clients: &mut Clients, request: GetForecastRequest) -> Forecast {
    clients.forecasts.get_forecast(request).await.unwrap().into_inner()
}

fn group<'a>(forecast: &'a Forecast, key: &str) -> &'a ForecastFigures {
    forecast.groups.iter().find(|group| group.key == key).unwrap().figures.as_ref().unwrap()
}

fn quota(figures: &ForecastFigures) -> Option<(i64, Option<i64>)> {
    figures.quota.as_ref().map(|quota| (quota.minor_units, figures.attainment_basis_points))
}

#[tokio::test]
async fn forecast_by_owner_matches_hand_computed_figures_and_quotas() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    seed(&app, &mut clients).await;
    let result = forecast(&mut clients, request(Q1.0, Q1.1, ForecastGrouping::Owner)).await;
    assert_eq!(result.currency_code, "EUR");
    let keys: Vec<_> = result.groups.iter().map(|g| (g.key.as_str(), g.label.as_str())).collect();
    assert_eq!(keys, [("alice", "alice"), ("bob", "bob"), ("carol", "carol"), ("dave", "dave")]);

    let total = result.total.as_ref().unwrap();
    assert_eq!(totals(total), (6, 171_914, 82_324));
    assert_eq!(
        categories(total),
        [
            ("PIPELINE".to_owned(), 2, 100_625),
            ("BEST_CASE".to_owned(), 1, 9_876),
            ("COMMIT".to_owned(), 2, 11_413),
            ("CLOSED".to_owned(), 1, 50_000),
            ("OMITTED".to_owned(), 1, 20_000),
        ]
    );
    assert_eq!(total.won_amount.as_ref().unwrap().minor_units, 50_000);
    // 85000 + 100000 + 10000; 50000 / 195000 = 25.641 %.
    assert_eq!(quota(total), Some((195_000, Some(2_564))));

    let alice = group(&result, "alice");
    assert_eq!(totals(alice), (3, 161_111, 76_667));
    assert_eq!(quota(alice), Some((85_000, Some(5_882)))); // 50000 / 85000 = 58.82 %
    let bob = group(&result, "bob");
    assert_eq!(totals(bob), (2, 10_501, 5_557));
    assert_eq!(categories(bob)[4], ("OMITTED".to_owned(), 1, 20_000));
    assert_eq!(quota(bob), Some((100_000, Some(0))));
    let carol = group(&result, "carol");
    assert_eq!(totals(carol), (1, 302, 100));
    assert_eq!(quota(carol), None);
    assert_eq!(totals(group(&result, "dave")), (0, 0, 0));
    assert_eq!(quota(group(&result, "dave")), Some((10_000, Some(0))));
}

#[tokio::test]
async fn forecast_by_month_team_stage_and_pipeline() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let seed = seed(&app, &mut clients).await;

    let by_month = forecast(&mut clients, request(Q1.0, Q1.1, ForecastGrouping::Month)).await;
    let months: Vec<_> = by_month.groups.iter().map(|g| (g.key.as_str(), g.label.as_str())).collect();
    assert_eq!(months, [("2026-01", "2026-01"), ("2026-02", "2026-02"), ("2026-03", "2026-03")]);
    assert_eq!(totals(group(&by_month, "2026-01")), (1, 100_000, 20_000));
    assert_eq!(totals(group(&by_month, "2026-02")), (3, 70_987, 62_099));
    assert_eq!(totals(group(&by_month, "2026-03")), (2, 927, 225));
    assert_eq!(quota(group(&by_month, "2026-01")), None);
    assert_eq!(quota(by_month.total.as_ref().unwrap()), Some((195_000, Some(2_564))));

    // DealRow 2 counts for alice and bob, deal 5 once for carol; totals count each deal once.
    let by_team = forecast(&mut clients, request(Q1.0, Q1.1, ForecastGrouping::Team)).await;
    assert_eq!(totals(group(&by_team, "alice")), (3, 161_111, 76_667));
    assert_eq!(totals(group(&by_team, "bob")), (3, 21_612, 12_224));
    assert_eq!(totals(group(&by_team, "carol")), (1, 302, 100));
    assert_eq!(totals(by_team.total.as_ref().unwrap()), (6, 171_914, 82_324));
    assert_eq!(quota(group(&by_team, "bob")), Some((100_000, Some(0))));

    let by_stage = forecast(&mut clients, request(Q1.0, Q1.1, ForecastGrouping::Stage)).await;
    let qualify = by_stage.groups.iter().find(|g| g.key == seed.qualify.to_string()).unwrap();
    assert_eq!(qualify.label, "Qualify");
    assert_eq!(totals(qualify.figures.as_ref().unwrap()), (3, 100_927, 20_225));
    assert_eq!(totals(group(&by_stage, &seed.propose.to_string())), (2, 20_987, 12_099));
    let mut keys: Vec<_> = by_stage.groups.iter().map(|g| g.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, by_stage.groups.iter().map(|g| g.key.clone()).collect::<Vec<_>>());

    let mut only = request(Q1.0, Q1.1, ForecastGrouping::Pipeline);
    only.pipeline_id = seed.pipeline.to_string();
    only.owner_ids = vec!["bob".into(), "carol".into()];
    let by_pipeline = forecast(&mut clients, only).await;
    assert_eq!(by_pipeline.groups.len(), 1);
    assert_eq!(by_pipeline.groups[0].label, "Sales");
    assert_eq!(totals(by_pipeline.total.as_ref().unwrap()), (3, 10_803, 5_657));
    assert_eq!(quota(by_pipeline.total.as_ref().unwrap()), Some((100_000, Some(0))));
}

#[tokio::test]
async fn a_missing_rate_fails_naming_the_pair_and_date() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    seed(&app, &mut clients).await;
    // In USD: EUR converts by the inverse of USD→EUR, JPY and KWD have no rate.
    let mut in_usd = request(Q1.0, Q1.1, ForecastGrouping::Owner);
    in_usd.currency_code = "USD".into();
    let status = clients.forecasts.get_forecast(in_usd.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "EXCHANGE_RATE_MISSING");
    let failure = {
        use tonic_types::StatusExt;
        status.get_details_precondition_failure().unwrap().violations.remove(0)
    };
    assert_eq!(failure.subject, "JPY/USD");
    assert!(failure.description.contains("2026-03-01"), "{}", failure.description);

    // A USD deal before the first USD rate.
    let pool = app.pool();
    let stage =
        sqlx::query_scalar("SELECT id FROM stages WHERE name = 'Qualify'").fetch_one(&pool).await.unwrap();
    let pipeline = sqlx::query_scalar("SELECT id FROM pipelines").fetch_one(&pool).await.unwrap();
    DealRow::open(pipeline, stage, "erin", day(2025, 12, 15)).amount("USD", 100).insert(&pool).await;
    let status = clients
        .forecasts
        .get_forecast(request((2025, 12, 1), (2026, 1, 31), ForecastGrouping::Month))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("USD to EUR") && status.message().contains("2025-12-15"),
        "{}",
        status.message()
    );

    // With JPY and KWD rates to USD from the start of the year it succeeds:
    // deal 1: 100000 EUR cents / 0.9 = 111111.1 → 111111 USD cents.
    set_rate(&mut clients, "JPY", "USD", "0.0065", day(2026, 1, 1)).await;
    set_rate(&mut clients, "KWD", "USD", "3.25", day(2026, 1, 1)).await;
    in_usd.group_by = ForecastGrouping::Month.into();
    in_usd.end_date = date(2026, 1, 31);
    let january = forecast(&mut clients, in_usd).await;
    assert_eq!(totals(january.total.as_ref().unwrap()), (1, 111_111, 22_222));
}

#[tokio::test]
async fn totals_beyond_64_bit_minor_units_are_out_of_range_not_a_dropped_connection() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let pool = app.pool();
    let pipeline = pipeline(&pool, "Sales", true).await;
    let qualify = stage(&pool, pipeline, "Qualify", 20, "OPEN", 1).await;
    // Two quotas of 5×10¹⁸ minor units: each fits, their sum does not.
    set_quota(&mut clients, "alice", 2026, 1, "EUR", 5_000_000_000_000_000_000).await;
    set_quota(&mut clients, "bob", 2026, 1, "EUR", 5_000_000_000_000_000_000).await;
    let status = clients
        .forecasts
        .get_forecast(request((2026, 1, 1), (2026, 1, 31), ForecastGrouping::Owner))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(reason(&status), "AMOUNT_OUT_OF_RANGE");
    sqlx::query("DELETE FROM quotas").execute(&pool).await.unwrap();
    // Two deals whose amounts each fit: the SQL sum does not.
    for owner in ["alice", "bob"] {
        DealRow::open(pipeline, qualify, owner, day(2026, 1, 10))
            .amount("EUR", 5_000_000_000_000_000_000)
            .insert(&pool)
            .await;
    }
    let status = clients
        .forecasts
        .get_forecast(request((2026, 1, 1), (2026, 1, 31), ForecastGrouping::Month))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    let summary = clients
        .forecasts
        .get_pipeline_summary(GetPipelineSummaryRequest {
            pipeline_id: pipeline.to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(summary.code(), Code::OutOfRange, "{summary:?}");
    // The service is still there.
    let fine = forecast(&mut clients, request((2026, 2, 1), (2026, 2, 28), ForecastGrouping::Owner)).await;
    assert!(fine.groups.is_empty());
}

#[tokio::test]
async fn forecast_requests_are_validated() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let bad = GetForecastRequest {
        start_date: date(2026, 3, 1),
        end_date: date(2026, 2, 1),
        group_by: 0,
        pipeline_id: "x".into(),
        owner_ids: vec![String::new()],
        currency_code: "eur".into(),
    };
    let status = clients.forecasts.get_forecast(bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["end_date", "group_by", "pipeline_id", "owner_ids[0]", "currency_code"]
    );
    let long = request((2026, 1, 1), (2028, 1, 2), ForecastGrouping::Owner);
    let status = clients.forecasts.get_forecast(long).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["end_date"]);
    let missing = GetForecastRequest { group_by: ForecastGrouping::Owner.into(), ..Default::default() };
    let status = clients.forecasts.get_forecast(missing).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["start_date", "end_date"]);
    // Exactly two years is fine, and an empty forecast has every category.
    let empty = forecast(&mut clients, request((2026, 1, 1), (2028, 1, 1), ForecastGrouping::Owner)).await;
    assert!(empty.groups.is_empty());
    assert_eq!(categories(empty.total.as_ref().unwrap()).len(), 5);
    assert_eq!(quota(empty.total.as_ref().unwrap()), None);
}

#[tokio::test]
async fn integration_cannot_read_forecasts() {
    let app = TestApp::spawn().await;
    let mut integration = app.clients_as("erp", &[Role::Integration]);
    let status =
        integration.forecasts.get_forecast(request(Q1.0, Q1.1, ForecastGrouping::Owner)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status =
        integration.forecasts.get_pipeline_summary(GetPipelineSummaryRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let mut viewer = app.clients_as("v", &[Role::Viewer]);
    viewer.forecasts.get_forecast(request(Q1.0, Q1.1, ForecastGrouping::Owner)).await.unwrap();
}

#[tokio::test]
async fn pipeline_summary_lists_every_open_stage_at_todays_rates() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let pool = app.pool();
    let pipeline = pipeline(&pool, "Sales", true).await;
    let qualify = stage(&pool, pipeline, "Qualify", 20, "OPEN", 1).await;
    let empty = stage(&pool, pipeline, "Empty", 50, "OPEN", 2).await;
    let won = stage(&pool, pipeline, "Won", 100, "WON", 3).await;
    let retired = stage(&pool, pipeline, "Old", 10, "OPEN", 4).await;
    sqlx::query("UPDATE stages SET retired = true WHERE id = $1").bind(retired).execute(&pool).await.unwrap();
    set_rate(&mut clients, "USD", "EUR", "0.5", day(2000, 1, 1)).await;
    set_rate(&mut clients, "USD", "EUR", "0.9", day(9999, 1, 1)).await; // not yet in force
    let now = chrono::Utc::now();
    let far = day(2030, 1, 1);
    DealRow::open(pipeline, qualify, "a", far)
        .amount("EUR", 1_001)
        .entered(now - chrono::TimeDelta::days(2))
        .insert(&pool)
        .await;
    DealRow::open(pipeline, qualify, "a", far)
        .amount("USD", 1_001)
        .entered(now - chrono::TimeDelta::days(4))
        .insert(&pool)
        .await;
    DealRow::open(pipeline, qualify, "a", far).amount("EUR", 5).closed("WON", won, now).insert(&pool).await;
    DealRow::open(pipeline, qualify, "a", far).amount("EUR", 7).deleted().insert(&pool).await;

    let summary = clients
        .forecasts
        .get_pipeline_summary(GetPipelineSummaryRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.pipeline_id, pipeline.to_string());
    assert_eq!(summary.currency_code, "EUR");
    let stages: Vec<_> =
        summary.stages.iter().map(|s| (s.stage_id.clone(), s.stage_name.as_str(), s.count)).collect();
    assert_eq!(stages, [(qualify.to_string(), "Qualify", 2), (empty.to_string(), "Empty", 0)]);
    // 1001 + 500.5 → 501 = 1502; weighted 200.2 → 200 + 100.2 → 100 = 300.
    let first = &summary.stages[0];
    assert_eq!(first.amount.as_ref().unwrap().minor_units, 1_502);
    assert_eq!(first.weighted_amount.as_ref().unwrap().minor_units, 300);
    let age = first.average_age.as_ref().unwrap().seconds;
    assert!((3 * 86_400 - 60..=3 * 86_400 + 60).contains(&age), "{age}");
    assert_eq!(summary.stages[1].average_age.as_ref().unwrap().seconds, 0);

    let status = clients
        .forecasts
        .get_pipeline_summary(GetPipelineSummaryRequest {
            pipeline_id: uuid::Uuid::now_v7().to_string(),
            currency_code: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = clients
        .forecasts
        .get_pipeline_summary(GetPipelineSummaryRequest {
            pipeline_id: String::new(),
            currency_code: "JPY".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "EXCHANGE_RATE_MISSING");
}
