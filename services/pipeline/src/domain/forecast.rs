//! Forecasts: parsed requests, exchange rates in force, quotas, the
//! categories figures are split into, and how the store's sums become a
//! forecast's groups and figures (checked arithmetic throughout). Pure:
//! the heavy summing is SQL (see `store::forecasts`), everything it relies
//! on is decided here.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use rapport_kit::fields::Violation;
use rapport_kit::money::{self, Currency, Money, MoneyError, Rate};
use rapport_proto::common::v1::{Date, Money as ProtoMoney};

use super::ids::PipelineId;
use super::invoice::date;

/// The longest range a forecast may cover: the end at most this many
/// calendar months after the start (two years).
pub const MAX_RANGE_MONTHS: u32 = 24;

/// The most owners one forecast may be narrowed to.
pub const MAX_OWNERS: usize = 200;

/// How forecast figures are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// Per deal owner.
    Owner,
    /// Per member of the deal team (owner and team members).
    Team,
    /// Per calendar month of the (expected) close date.
    Month,
    /// Per stage.
    Stage,
    /// Per pipeline.
    Pipeline,
}

impl Grouping {
    /// True when groups are users, who have quotas.
    pub fn has_quotas(self) -> bool {
        matches!(self, Grouping::Owner | Grouping::Team)
    }
}

/// The forecast categories, in proto (and output) order; stored as these names.
pub const CATEGORIES: [&str; 5] = ["PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMITTED"];

/// The category left out of counts, amounts and weighted amounts.
pub const OMITTED: &str = "OMITTED";

/// The category of won deals.
pub const CLOSED: &str = "CLOSED";

/// A parsed GetForecast request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastQuery {
    /// First day, inclusive.
    pub start: NaiveDate,
    /// Last day, inclusive; at most [`MAX_RANGE_MONTHS`] after `start`.
    pub end: NaiveDate,
    /// How to group.
    pub grouping: Grouping,
    /// Only this pipeline's deals.
    pub pipeline_id: Option<PipelineId>,
    /// Only these owners' deals (empty: all).
    pub owner_ids: Vec<String>,
    /// The reporting currency.
    pub currency: Currency,
}

impl ForecastQuery {
    /// Parses the request fields, reporting every violation. `grouping` is
    /// `None` when unset or unknown; `currency_code` empty means `default`.
    pub fn parse(
        (start, end): (Option<&Date>, Option<&Date>),
        grouping: Option<Grouping>,
        pipeline_id: &str,
        owner_ids: &[String],
        (currency_code, default): (&str, &str),
    ) -> Result<ForecastQuery, Vec<Violation>> {
        let mut violations = Vec::new();
        let start = date("start_date", start).map_err(|v| violations.push(v)).ok();
        let end = date("end_date", end).map_err(|v| violations.push(v)).ok();
        if let (Some(start), Some(end)) = (start, end) {
            if end < start {
                violations.push(Violation::new("end_date", "must be on or after start_date"));
            } else if start
                .checked_add_months(chrono::Months::new(MAX_RANGE_MONTHS))
                .is_some_and(|last| end > last)
            {
                violations.push(Violation::new("end_date", "must be at most 2 years after start_date"));
            }
        }
        if grouping.is_none() {
            violations.push(Violation::new("group_by", "is required: OWNER, TEAM, MONTH, STAGE or PIPELINE"));
        }
        let pipeline_id = match pipeline_id {
            "" => Ok(None),
            raw => PipelineId::parse("pipeline_id", raw).map(Some),
        }
        .map_err(|v| violations.push(v))
        .ok()
        .flatten();
        rapport_kit::fields::cap("owner_ids", owner_ids, MAX_OWNERS).map_err(|cap| vec![cap])?;
        for (index, owner_id) in owner_ids.iter().enumerate() {
            if let Err(violation) =
                rapport_kit::fields::text(&format!("owner_ids[{index}]"), owner_id, true, 256)
            {
                violations.push(violation);
            }
        }
        let currency =
            reporting_currency("currency_code", currency_code, default).map_err(|v| violations.push(v)).ok();
        match (start, end, grouping, currency) {
            (Some(start), Some(end), Some(grouping), Some(currency)) if violations.is_empty() => {
                Ok(ForecastQuery {
                    start,
                    end,
                    grouping,
                    pipeline_id,
                    owner_ids: owner_ids.to_vec(),
                    currency,
                })
            }
            _ => Err(violations),
        }
    }

    /// The months overlapping the range, as (year, month), in order.
    pub fn months(&self) -> Vec<(i32, u32)> {
        let mut months = Vec::new();
        let mut month = first_of_month(self.start);
        while month <= self.end {
            months.push((month.year(), month.month()));
            month = month.checked_add_months(chrono::Months::new(1)).unwrap_or(NaiveDate::MAX);
        }
        months
    }
}

/// The first day of `day`'s month.
pub fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// The request's currency, or `default` (the configured one) when empty.
pub fn reporting_currency(field: &str, code: &str, default: &str) -> Result<Currency, Violation> {
    Currency::parse(field, if code.is_empty() { default } else { code })
}

/// A stored exchange rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeRate {
    /// Converted from.
    pub from: Currency,
    /// Converted to.
    pub to: Currency,
    /// Units of `to` per unit of `from`.
    pub rate: Rate,
    /// First day in force.
    pub effective_date: NaiveDate,
}

impl ExchangeRate {
    /// Parses a SetExchangeRate input, reporting every violation (paths
    /// under `exchange_rate.`).
    pub fn parse(
        from: &str,
        to: &str,
        rate: &str,
        effective_date: Option<&Date>,
    ) -> Result<ExchangeRate, Vec<Violation>> {
        let mut violations = Vec::new();
        let from =
            Currency::parse("exchange_rate.from_currency_code", from).map_err(|v| violations.push(v)).ok();
        let to = Currency::parse("exchange_rate.to_currency_code", to).map_err(|v| violations.push(v)).ok();
        if let (Some(from), Some(to)) = (from, to)
            && from == to
        {
            violations.push(Violation::new(
                "exchange_rate.to_currency_code",
                "must differ from from_currency_code",
            ));
        }
        let rate = Rate::parse("exchange_rate.rate", rate).map_err(|v| violations.push(v)).ok();
        let effective_date =
            date("exchange_rate.effective_date", effective_date).map_err(|v| violations.push(v)).ok();
        match (from, to, rate, effective_date) {
            (Some(from), Some(to), Some(rate), Some(effective_date)) if violations.is_empty() => {
                Ok(ExchangeRate { from, to, rate, effective_date })
            }
            _ => Err(violations),
        }
    }
}

/// How an amount is converted on one day: by the pair's rate, or by the
/// opposite pair's rate inverted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// Same currency: nothing to do.
    Same,
    /// `from → to` at this rate.
    Direct(Rate),
    /// Only `to → from` is set: divide by this rate.
    Inverse(Rate),
}

impl Conversion {
    /// `amount` converted to `to`, rounded once.
    pub fn apply(self, amount: Money, to: Currency) -> Result<Money, MoneyError> {
        match self {
            Conversion::Same => Ok(amount),
            Conversion::Direct(rate) => money::convert(amount, rate, to),
            Conversion::Inverse(rate) => money::convert_inverse(amount, rate, to),
        }
    }
}

/// The exchange rates involving one reporting currency, to find the rate
/// in force on a day.
#[derive(Debug, Clone, Default)]
pub struct RateBook {
    /// Sorted by (from, to, effective_date).
    rates: Vec<ExchangeRate>,
}

impl RateBook {
    /// A book of `rates` (any order).
    pub fn new(mut rates: Vec<ExchangeRate>) -> RateBook {
        rates.sort_by_key(|rate| (rate.from.code(), rate.to.code(), rate.effective_date));
        RateBook { rates }
    }

    fn latest(&self, from: Currency, to: Currency, day: NaiveDate) -> Option<Rate> {
        self.rates
            .iter()
            .filter(|rate| rate.from == from && rate.to == to && rate.effective_date <= day)
            .max_by_key(|rate| rate.effective_date)
            .map(|rate| rate.rate)
    }

    /// The conversion in force on `day`: the pair's latest rate on or before
    /// it, else the opposite pair's; `None` when neither is set.
    pub fn in_force(&self, from: Currency, to: Currency, day: NaiveDate) -> Option<Conversion> {
        if from == to {
            return Some(Conversion::Same);
        }
        self.latest(from, to, day)
            .map(Conversion::Direct)
            .or_else(|| self.latest(to, from, day).map(Conversion::Inverse))
    }

    /// The currencies this book can convert from into `to`.
    pub fn currencies(&self, to: Currency) -> Vec<Currency> {
        let mut currencies: Vec<Currency> = self
            .rates
            .iter()
            .filter_map(|rate| match (rate.from == to, rate.to == to) {
                (true, false) => Some(rate.to),
                (false, true) => Some(rate.from),
                _ => None,
            })
            .collect();
        currencies.sort_by_key(|currency| currency.code());
        currencies.dedup();
        currencies
    }
}

/// A parsed SetQuota input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDraft {
    /// The owner.
    pub owner_id: String,
    /// The year, 1-9999.
    pub year: i32,
    /// The month, 1-12.
    pub month: u32,
    /// Not negative.
    pub amount: Money,
}

impl QuotaDraft {
    /// Parses a SetQuota input, reporting every violation (paths under `quota.`).
    pub fn parse(
        owner_id: &str,
        year: i32,
        month: i32,
        amount: Option<&ProtoMoney>,
    ) -> Result<QuotaDraft, Vec<Violation>> {
        let mut violations = Vec::new();
        let owner = rapport_kit::fields::text("quota.owner_id", owner_id, true, 256)
            .map_err(|v| violations.push(v))
            .ok();
        if !(1..=9999).contains(&year) {
            violations.push(Violation::new("quota.year", "must be between 1 and 9999"));
        }
        let month = u32::try_from(month).ok().filter(|month| (1..=12).contains(month));
        if month.is_none() {
            violations.push(Violation::new("quota.month", "must be between 1 and 12"));
        }
        let amount = match amount {
            None => Err(Violation::new("quota.amount", "is required")),
            Some(raw) => Money::from_proto("quota.amount", raw).and_then(|amount| {
                if amount.minor_units() < 0 {
                    Err(Violation::new("quota.amount.minor_units", "must not be negative"))
                } else {
                    Ok(amount)
                }
            }),
        }
        .map_err(|v| violations.push(v))
        .ok();
        match (owner, month, amount) {
            (Some(owner_id), Some(month), Some(amount)) if violations.is_empty() => {
                Ok(QuotaDraft { owner_id, year, month, amount })
            }
            _ => Err(violations),
        }
    }
}

/// Parses a ListQuotas period: a year 1-9999 and a month 0-12 (0: all year).
pub fn quota_period(year: i32, month: i32) -> Result<(i32, Option<i32>), Vec<Violation>> {
    let mut violations = Vec::new();
    if !(1..=9999).contains(&year) {
        violations.push(Violation::new("year", "must be between 1 and 9999"));
    }
    if !(0..=12).contains(&month) {
        violations.push(Violation::new("month", "must be between 1 and 12, or 0 for the whole year"));
    }
    if violations.is_empty() { Ok((year, (month != 0).then_some(month))) } else { Err(violations) }
}

/// One sum the store computed: per (group key, category), or, for TEAM
/// groups only, per category over all deals (`key` `None`: a deal counts
/// once in the total however many team groups it is in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategorySum {
    /// The group key (MONTH keys per day, `YYYY-MM-DD`); `None` on total rows.
    pub key: Option<String>,
    /// The stored category name (one of [`CATEGORIES`]).
    pub category: String,
    /// Deals.
    pub count: i64,
    /// Sum of converted amounts.
    pub amount: i64,
    /// Sum of weighted converted amounts.
    pub weighted: i64,
}

/// A stored quota of one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthQuota {
    /// Whose.
    pub owner_id: String,
    /// The first day of its month: its amount converts at the rate in force then.
    pub first_day: NaiveDate,
    /// The amount.
    pub amount: Money,
}

/// Why a forecast cannot be computed from what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForecastError {
    /// No rate `from → to` (nor back) is in force on `day`.
    RateMissing {
        /// Converted from.
        from: Currency,
        /// Converted to.
        to: Currency,
        /// The day that needs one.
        day: NaiveDate,
    },
    /// A total does not fit in 64-bit minor units: the named figure.
    OutOfRange(&'static str),
}

fn add(figure: &'static str, left: i64, right: i64) -> Result<i64, ForecastError> {
    left.checked_add(right).ok_or(ForecastError::OutOfRange(figure))
}

/// Per owner, the quotas converted into `to` at the rate in force on each
/// month's first day, summed with checked arithmetic.
pub fn quota_totals(
    quotas: &[MonthQuota],
    book: &RateBook,
    to: Currency,
) -> Result<BTreeMap<String, i64>, ForecastError> {
    let mut owners = BTreeMap::new();
    for quota in quotas {
        let from = quota.amount.currency();
        let conversion = book.in_force(from, to, quota.first_day).ok_or(ForecastError::RateMissing {
            from,
            to,
            day: quota.first_day,
        })?;
        let converted = conversion.apply(quota.amount, to).map_err(|_| ForecastError::OutOfRange("quota"))?;
        let total: &mut i64 = owners.entry(quota.owner_id.clone()).or_default();
        *total = add("quota", *total, converted.minor_units())?;
    }
    Ok(owners)
}

/// One category's share of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategoryFigures {
    /// The category (one of [`CATEGORIES`], in that order).
    pub name: &'static str,
    /// Deals.
    pub count: i64,
    /// Their converted amounts.
    pub amount: i64,
}

/// The figures of one group, or of all deals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    /// Deals, OMITTED left out.
    pub count: i64,
    /// Their amounts, OMITTED left out.
    pub amount: i64,
    /// Their weighted amounts, OMITTED left out.
    pub weighted: i64,
    /// The CLOSED (won) amount.
    pub won: i64,
    /// Every category, OMITTED included, in [`CATEGORIES`] order.
    pub categories: Vec<CategoryFigures>,
    /// The quota, for groups of users that have one.
    pub quota: Option<i64>,
}

impl Figures {
    /// The figures of `sums`: OMITTED is a category total only.
    pub fn of(sums: &[&CategorySum], quota: Option<i64>) -> Result<Figures, ForecastError> {
        let mut figures = Figures { count: 0, amount: 0, weighted: 0, won: 0, categories: Vec::new(), quota };
        for name in CATEGORIES {
            let mut category = CategoryFigures { name, count: 0, amount: 0 };
            for sum in sums.iter().filter(|sum| sum.category == name) {
                category.count = add("count", category.count, sum.count)?;
                category.amount = add("amount", category.amount, sum.amount)?;
                if name != OMITTED {
                    figures.weighted = add("weighted amount", figures.weighted, sum.weighted)?;
                }
            }
            if name != OMITTED {
                figures.count = add("count", figures.count, category.count)?;
                figures.amount = add("amount", figures.amount, category.amount)?;
            }
            if name == CLOSED {
                figures.won = category.amount;
            }
            figures.categories.push(category);
        }
        Ok(figures)
    }
}

/// A forecast: its groups in key order, and the total over all deals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    /// (group key, its figures).
    pub groups: Vec<(String, Figures)>,
    /// Over all deals in scope; its quota is every owner's quota in the range.
    pub total: Figures,
}

/// Assembles a forecast from the store's sums and the owners' quota totals
/// ([`quota_totals`]): MONTH sums (per day) add up per month; users with a
/// quota and no deals still get a group; TEAM totals come from the
/// store's total rows (a deal is in as many team groups as it has
/// members), every other grouping's from its groups.
pub fn assemble(
    grouping: Grouping,
    sums: &[CategorySum],
    quotas: &BTreeMap<String, i64>,
) -> Result<Assembled, ForecastError> {
    let mut groups: BTreeMap<String, Vec<&CategorySum>> = BTreeMap::new();
    let mut total = Vec::new();
    for sum in sums {
        match &sum.key {
            // "YYYY-MM-DD" → "YYYY-MM".
            Some(key) if grouping == Grouping::Month => {
                groups.entry(key.chars().take(7).collect()).or_default().push(sum)
            }
            Some(key) => groups.entry(key.clone()).or_default().push(sum),
            None => total.push(sum),
        }
    }
    if grouping != Grouping::Team {
        total = sums.iter().collect();
    }
    let mut total_quota = None;
    for quota in quotas.values() {
        total_quota = Some(add("quota", total_quota.unwrap_or(0), *quota)?);
    }
    let group_quotas = if grouping.has_quotas() { Some(quotas) } else { None };
    for owner in group_quotas.into_iter().flat_map(BTreeMap::keys) {
        groups.entry(owner.clone()).or_default();
    }
    let groups = groups
        .into_iter()
        .map(|(key, sums)| {
            let quota = group_quotas.and_then(|quotas| quotas.get(&key).copied());
            Figures::of(&sums, quota).map(|figures| (key, figures))
        })
        .collect::<Result<_, _>>()?;
    Ok(Assembled { groups, total: Figures::of(&total, total_quota)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currency(code: &str) -> Currency {
        Currency::parse("c", code).unwrap()
    }

    fn rate(from: &str, to: &str, rate: &str, day: NaiveDate) -> ExchangeRate {
        ExchangeRate {
            from: currency(from),
            to: currency(to),
            rate: Rate::parse("r", rate).unwrap(),
            effective_date: day,
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn proto_day(y: i32, m: i32, d: i32) -> Option<Date> {
        Some(Date { year: y, month: m, day: d })
    }

    #[test]
    fn the_rate_in_force_is_the_latest_on_or_before_the_day_else_the_inverse() {
        let book = RateBook::new(vec![
            rate("USD", "EUR", "0.9", day(2026, 1, 1)),
            rate("USD", "EUR", "0.8", day(2026, 3, 1)),
            rate("EUR", "JPY", "160", day(2026, 1, 1)),
        ]);
        let (usd, eur, jpy) = (currency("USD"), currency("EUR"), currency("JPY"));
        let direct = |r: &str| Some(Conversion::Direct(Rate::parse("r", r).unwrap()));
        assert_eq!(book.in_force(usd, eur, day(2025, 12, 31)), None);
        assert_eq!(book.in_force(usd, eur, day(2026, 2, 28)), direct("0.9"));
        assert_eq!(book.in_force(usd, eur, day(2026, 3, 1)), direct("0.8"));
        assert_eq!(
            book.in_force(jpy, eur, day(2026, 6, 1)),
            Some(Conversion::Inverse(Rate::parse("r", "160").unwrap()))
        );
        assert_eq!(book.in_force(eur, eur, day(1, 1, 1)), Some(Conversion::Same));
        assert_eq!(book.currencies(eur), vec![jpy, usd]);
        let yen = Money::new(jpy, 1000);
        assert_eq!(
            book.in_force(jpy, eur, day(2026, 6, 1)).unwrap().apply(yen, eur),
            Ok(Money::new(eur, 625))
        );
    }

    #[test]
    fn forecast_queries_report_every_violation() {
        let err = ForecastQuery::parse(
            (proto_day(2026, 3, 1).as_ref(), proto_day(2026, 2, 1).as_ref()),
            None,
            "nope",
            &[" ".to_owned()],
            ("eur", "EUR"),
        )
        .unwrap_err();
        let fields: Vec<_> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["end_date", "group_by", "pipeline_id", "owner_ids[0]", "currency_code"]);
        let long = ForecastQuery::parse(
            (proto_day(2026, 1, 1).as_ref(), proto_day(2028, 1, 3).as_ref()),
            Some(Grouping::Month),
            "",
            &[],
            ("", "EUR"),
        );
        assert_eq!(long.unwrap_err()[0].field, "end_date");
        let two_years = ForecastQuery::parse(
            (proto_day(2026, 1, 1).as_ref(), proto_day(2028, 1, 1).as_ref()),
            Some(Grouping::Month),
            "",
            &[],
            ("", "EUR"),
        );
        assert!(two_years.is_ok());
        let ok = ForecastQuery::parse(
            (proto_day(2026, 1, 15).as_ref(), proto_day(2026, 3, 1).as_ref()),
            Some(Grouping::Owner),
            "",
            &[],
            ("", "EUR"),
        )
        .unwrap();
        assert_eq!(ok.currency, currency("EUR"));
        assert_eq!(ok.months(), vec![(2026, 1), (2026, 2), (2026, 3)]);
    }

    #[test]
    fn rates_and_quotas_are_checked() {
        let err = ExchangeRate::parse("EUR", "EUR", "0", proto_day(2026, 2, 30).as_ref()).unwrap_err();
        let fields: Vec<_> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["exchange_rate.to_currency_code", "exchange_rate.rate", "exchange_rate.effective_date"]
        );
        let money = ProtoMoney { currency_code: "EUR".into(), minor_units: -1 };
        let err = QuotaDraft::parse("", 0, 13, Some(&money)).unwrap_err();
        let fields: Vec<_> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["quota.owner_id", "quota.year", "quota.month", "quota.amount.minor_units"]);
        assert_eq!(quota_period(2026, 0), Ok((2026, None)));
        assert!(quota_period(2026, 13).is_err());
    }

    fn sum(key: Option<&str>, category: &str, count: i64, amount: i64, weighted: i64) -> CategorySum {
        CategorySum { key: key.map(str::to_owned), category: category.to_owned(), count, amount, weighted }
    }

    #[test]
    fn months_add_up_per_month_and_omitted_counts_only_in_its_category() {
        let sums = [
            sum(Some("2026-01-05"), "PIPELINE", 1, 100, 10),
            sum(Some("2026-01-20"), "CLOSED", 2, 300, 300),
            sum(Some("2026-02-01"), "OMITTED", 4, 1000, 500),
        ];
        let quotas = BTreeMap::from([("ann".to_owned(), 400)]);
        let forecast = assemble(Grouping::Month, &sums, &quotas).unwrap();
        let keys: Vec<_> = forecast.groups.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["2026-01", "2026-02"]);
        let january = &forecast.groups[0].1;
        assert_eq!((january.count, january.amount, january.weighted, january.won), (3, 400, 310, 300));
        assert_eq!(january.quota, None);
        let february = &forecast.groups[1].1;
        assert_eq!((february.count, february.amount), (0, 0));
        let omitted = february.categories.iter().find(|c| c.name == OMITTED).unwrap();
        assert_eq!((omitted.count, omitted.amount), (4, 1000));
        assert_eq!((forecast.total.count, forecast.total.quota), (3, Some(400)));
    }

    #[test]
    fn owners_with_a_quota_and_no_deals_get_a_group_and_team_totals_count_a_deal_once() {
        let sums = [
            sum(Some("ann"), "COMMIT", 1, 100, 50),
            sum(Some("bob"), "COMMIT", 1, 100, 50),
            sum(None, "COMMIT", 1, 100, 50),
        ];
        let quotas = BTreeMap::from([("cat".to_owned(), 70)]);
        let forecast = assemble(Grouping::Team, &sums, &quotas).unwrap();
        let keys: Vec<_> = forecast.groups.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["ann", "bob", "cat"]);
        assert_eq!(forecast.groups[2].1.quota, Some(70));
        assert_eq!((forecast.total.count, forecast.total.amount), (1, 100));
    }

    #[test]
    fn totals_beyond_64_bits_are_out_of_range_not_a_panic() {
        let big = i64::MAX / 2 + 1;
        let sums = [sum(Some("ann"), "COMMIT", 1, big, 0), sum(Some("ann"), "CLOSED", 1, big, 0)];
        let quotas = BTreeMap::new();
        assert_eq!(assemble(Grouping::Owner, &sums, &quotas), Err(ForecastError::OutOfRange("amount")));
        let quotas = BTreeMap::from([("ann".to_owned(), big), ("bob".to_owned(), big)]);
        assert_eq!(assemble(Grouping::Owner, &[], &quotas), Err(ForecastError::OutOfRange("quota")));
        let eur = currency("EUR");
        let month = |owner: &str| MonthQuota {
            owner_id: owner.to_owned(),
            first_day: day(2026, 1, 1),
            amount: Money::new(eur, 5_000_000_000_000_000_000),
        };
        let book = RateBook::default();
        assert_eq!(
            quota_totals(&[month("ann"), month("ann")], &book, eur),
            Err(ForecastError::OutOfRange("quota"))
        );
        let missing = quota_totals(&[month("ann")], &book, currency("USD"));
        assert_eq!(
            missing,
            Err(ForecastError::RateMissing { from: eur, to: currency("USD"), day: day(2026, 1, 1) })
        );
    }
}
