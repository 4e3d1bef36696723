//! Property tests over the decoders that face the network: the AIP-160
//! filter parser, page tokens, money and decimal strings. Whatever the
//! input, no panic, and every rejection is a clean error. `make test` runs
//! proptest's default number of cases; `make fuzz` runs 100,000 each
//! (`PROPTEST_CASES`).

use proptest::prelude::*;
use rapport_kit::filter::{self, Field, FieldKind};
use rapport_kit::money::{Currency, Money, Percent, Quantity, Rate, convert, line_amount};
use rapport_kit::paging;

const STAGES: &[&str] = &["LEAD", "CUSTOMER"];

const FIELDS: &[Field] = &[
    Field { name: "name", column: "c.name", kind: FieldKind::Text },
    Field { name: "id", column: "c.id", kind: FieldKind::Uuid },
    Field { name: "age", column: "c.age", kind: FieldKind::Integer },
    Field { name: "active", column: "c.active", kind: FieldKind::Bool },
    Field { name: "create_time", column: "c.created_at", kind: FieldKind::Timestamp },
    Field { name: "stage", column: "c.stage", kind: FieldKind::Enum { prefix: "STAGE_", values: STAGES } },
    Field { name: "tags", column: "c.tags", kind: FieldKind::TextArray },
    Field { name: "member_ids", column: "c.member_ids", kind: FieldKind::UuidArray },
];

/// Filter-shaped text: the grammar's tokens, field names and values in any
/// order, so the parser's deeper states are reached, not just the lexer's.
fn filter_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("name".to_owned()),
        Just("age".to_owned()),
        Just("stage".to_owned()),
        Just("tags".to_owned()),
        Just("create_time".to_owned()),
        Just("member_ids".to_owned()),
        Just("=".to_owned()),
        Just("!=".to_owned()),
        Just("<=".to_owned()),
        Just(">".to_owned()),
        Just(":".to_owned()),
        Just("AND".to_owned()),
        Just("OR".to_owned()),
        Just("NOT".to_owned()),
        Just("-".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("*".to_owned()),
        Just("\"".to_owned()),
        Just("LEAD".to_owned()),
        Just("2024-01-01T00:00:00Z".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        "\"[^\"]{0,12}\"",
        "[a-z_.]{1,8}",
        any::<String>(),
    ];
    prop::collection::vec(token, 0..24).prop_map(|tokens| tokens.join(" "))
}

proptest! {
    #[test]
    fn the_filter_parser_never_panics(text in prop_oneof![filter_text(), any::<String>()]) {
        match filter::parse(&text, FIELDS, 3) {
            Ok(Some(sql)) => {
                // Values are bound, never spliced: no input text reaches the SQL
                // except the allow-listed columns and operators.
                prop_assert!(!sql.sql.contains('\''), "{}", sql.sql);
            }
            Ok(None) => prop_assert!(text.trim().is_empty()),
            Err(err) => prop_assert!(!err.message.is_empty()),
        }
    }

    #[test]
    fn page_tokens_never_panic_and_only_empty_is_the_first_page(token in prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,60}",
    ]) {
        match paging::decode_token(&token, "fingerprint") {
            Ok(None) => prop_assert!(token.is_empty()),
            Ok(Some(_)) => prop_assert!(false, "a token nobody issued was accepted: {token:?}"),
            Err(problem) => prop_assert_eq!(problem.reason(), "INVALID_PAGE_TOKEN"),
        }
    }

    #[test]
    fn decimal_strings_parse_cleanly_or_are_violations(raw in prop_oneof![
        any::<String>(),
        "-?[0-9]{0,40}(\\.[0-9]{0,40})?",
        "[0-9eE+.-]{0,20}",
    ]) {
        for result in [
            Quantity::parse("q", &raw).map(drop),
            Percent::parse("p", &raw).map(drop),
            Rate::parse("r", &raw).map(drop),
        ] {
            if let Err(violation) = result {
                prop_assert!(!violation.description.is_empty());
            }
        }
    }

    #[test]
    fn money_arithmetic_on_extreme_values_is_checked(
        code in prop_oneof![
            Just("EUR".to_owned()),
            Just("JPY".to_owned()),
            Just("KWD".to_owned()),
            Just("XXX".to_owned()),
            "[A-Za-z]{0,4}",
        ],
        minor in any::<i64>(),
        quantity in "[0-9]{1,12}(\\.[0-9]{1,6})?",
        percent in "[0-9]{1,2}(\\.[0-9]{1,2})?",
        rate in "[0-9]{1,9}(\\.[0-9]{1,9})?",
    ) {
        let Ok(money) = Money::parse("amount", &code, minor) else { return Ok(()) };
        if let (Ok(quantity), Ok(percent)) = (Quantity::parse("q", &quantity), Percent::parse("p", &percent)) {
            let _ = line_amount(money, quantity, percent);
        }
        if let (Ok(rate), Ok(to)) = (Rate::parse("r", &rate), Currency::parse("c", "JPY")) {
            let _ = convert(money, rate, to);
        }
        let _ = Money::sum(money.currency(), [money, money, money]);
    }
}
