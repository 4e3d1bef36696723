//! Unit tests: grammar, precedence, quoting, errors with positions, limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{FIELDS, err, err_pos, ok, sql, text};
use super::*;

const A1: &str = "(c.age = $1::bigint)";
const A2: &str = "(c.age = $2::bigint)";
const A3: &str = "(c.age = $3::bigint)";

#[test]
fn or_binds_tighter_than_and() {
    assert_eq!(sql("age = 1 AND age = 2 OR age = 3"), format!("({A1} AND ({A2} OR {A3}))"));
    assert_eq!(sql("age = 1 OR age = 2 AND age = 3"), format!("(({A1} OR {A2}) AND {A3})"));
}

#[test]
fn juxtaposition_is_and() {
    assert_eq!(sql("age = 1 age = 2"), format!("({A1} AND {A2})"));
    assert_eq!(sql("age = 1 age = 2 OR age = 3"), format!("({A1} AND ({A2} OR {A3}))"));
    assert_eq!(sql("age = 1 AND age = 2 AND age = 3"), format!("({A1} AND {A2} AND {A3})"));
    assert_eq!(sql("age = 1 OR age = 2 OR age = 3"), format!("({A1} OR {A2} OR {A3})"));
}

#[test]
fn not_binds_tightest() {
    assert_eq!(sql("NOT age = 1 OR age = 2"), format!("(({A1} IS NOT TRUE) OR {A2})"));
    assert_eq!(sql("-age = 1"), format!("({A1} IS NOT TRUE)"));
    assert_eq!(sql("age = 1 -age = 2"), format!("({A1} AND ({A2} IS NOT TRUE))"));
    assert_eq!(sql("NOT (age = 1 OR age = 2)"), format!("(({A1} OR {A2}) IS NOT TRUE)"));
    assert_eq!(sql("NOT(age = 1)"), format!("({A1} IS NOT TRUE)"));
    assert_eq!(sql("NOT NOT age = 1"), format!("(({A1} IS NOT TRUE) IS NOT TRUE)"));
    assert_eq!(sql("NOT -age = 1"), format!("(({A1} IS NOT TRUE) IS NOT TRUE)"));
}

#[test]
fn parentheses_group() {
    assert_eq!(sql("(age = 1 AND age = 2) OR age = 3"), format!("(({A1} AND {A2}) OR {A3})"));
    assert_eq!(sql("((age = 1))"), A1);
    assert_eq!(sql("(age=1)OR(age=2)"), format!("({A1} OR {A2})"));
    assert_eq!(sql("age = 1 AND (age = 2 OR (age = 3))"), format!("({A1} AND ({A2} OR {A3}))"));
}

#[test]
fn whitespace_is_flexible() {
    assert_eq!(sql("age=1"), A1);
    assert_eq!(sql("  age\t=\n1  "), A1);
    assert_eq!(sql("age = 1\nAND\tage = 2"), format!("({A1} AND {A2})"));
    assert_eq!(sql("age :*"), "(c.age IS NOT NULL)");
}

#[test]
fn quoted_strings_and_escapes() {
    let p = |f: &str| ok(f).params;
    assert_eq!(p(r"name = 'it\'s'"), vec![text("it's")]);
    assert_eq!(p(r#"name = "say \"hi\"""#), vec![text("say \"hi\"")]);
    assert_eq!(p(r#"name = 'say "hi"'"#), vec![text("say \"hi\"")]);
    assert_eq!(p(r#"name = "a\tb\nc\rd\\e\qf""#), vec![text("a\tb\nc\rd\\eqf")]);
    assert_eq!(p(r#"name = "AND""#), vec![text("AND")]);
    assert_eq!(p(r#"name = "two words""#), vec![text("two words")]);
    assert_eq!(p("name = O'Brien"), vec![text("O'Brien")]);
    assert_eq!(p("name = héllo"), vec![text("héllo")]);
}

#[test]
fn unknown_fields_are_listed() {
    assert_eq!(
        err("foo = 1"),
        (0, "unknown field 'foo'; allowed fields: name, id, age, active, create_time, stage, tags, member_ids".into())
    );
    assert_eq!(err_pos("age = 1 AND foo:x"), 12);
    assert_eq!(err_pos("Name = x"), 0);
    let e = parse("a = 1", &[], 1).unwrap_err();
    assert_eq!(e.message, "unknown field 'a'; no fields are filterable here");
}

#[test]
fn bare_values_are_rejected() {
    let bare = "bare values are not supported; write field:value".to_owned();
    assert_eq!(err("ada"), (0, bare.clone()));
    assert_eq!(err("age = 1 ada"), (8, bare.clone()));
    assert_eq!(err("\"ada lovelace\""), (0, bare.clone()));
    assert_eq!(err("42"), (0, bare.clone()));
    assert_eq!(err("-ada"), (1, bare));
    assert_eq!(err(r#""age" = 1"#), (0, "field names cannot be quoted".into()));
    assert_eq!(err("name"), (4, "expected an operator (=, !=, <, <=, >, >=, :) after field 'name'".into()));
    assert_eq!(err("age = 1 and age = 2"), (8, "keywords must be upper case: write AND".into()));
    assert_eq!(err("not age = 2"), (0, "keywords must be upper case: write NOT".into()));
}

#[test]
fn unterminated_strings() {
    assert_eq!(err(r#"name = "ada"#), (7, "unterminated string".into()));
    assert_eq!(err_pos(r"name = 'ada\'"), 7);
    assert_eq!(err_pos(r#"name = "ada\"#), 7);
    assert_eq!(err_pos(r#"age = 1 "abc"#), 8);
}

#[test]
fn unbalanced_parentheses() {
    assert_eq!(err("(age = 1"), (0, "unbalanced parenthesis: '(' is never closed".into()));
    assert_eq!(err_pos("age = 1 AND (age = 2 OR (age = 3)"), 12);
    assert_eq!(err("age = 1)"), (7, "unbalanced parenthesis: unexpected ')'".into()));
    assert_eq!(err("(age = 1))"), (9, "unbalanced parenthesis: unexpected ')'".into()));
    assert_eq!(err("()"), (1, "expected an expression, found ')'".into()));
    assert_eq!(err(")"), (0, "expected an expression, found ')'".into()));
}

#[test]
fn missing_expressions() {
    assert_eq!(err("NOT"), (3, "expected an expression after NOT".into()));
    assert_eq!(err("age = 1 AND"), (11, "expected an expression after AND".into()));
    assert_eq!(err("age = 1 OR  "), (12, "expected an expression after OR".into()));
    assert_eq!(err("age = 1 AND )"), (12, "expected an expression after AND, found ')'".into()));
    assert_eq!(err("-"), (1, "expected an expression after '-'".into()));
    assert_eq!(err("age = 1 OR AND age = 2"), (11, "expected an expression after OR, found AND".into()));
    assert_eq!(err("AND age = 1"), (0, "expected an expression, found AND".into()));
    assert_eq!(err("(NOT)"), (4, "expected an expression after NOT, found ')'".into()));
}

#[test]
fn trailing_garbage_and_bad_operators() {
    assert_eq!(err("age = 1 = 2"), (8, "expected an expression, found '='".into()));
    assert_eq!(err_pos("age = 1 :"), 8);
    assert_eq!(err("age ! 1"), (4, "expected '!='".into()));
    assert_eq!(err("age =="), (5, "expected a value after '=', found '='".into()));
    assert_eq!(err("age ="), (5, "expected a value after '='".into()));
    assert_eq!(err("age >= "), (7, "expected a value after '>='".into()));
    assert_eq!(err("(age = )"), (7, "expected a value after '=', found ')'".into()));
    assert_eq!(
        err("name = AND age = 1"),
        (7, "expected a value after '=', found keyword AND (quote it to use it as a value)".into())
    );
}

#[test]
fn positions_count_characters_not_bytes() {
    assert_eq!(err_pos("name = \"héllo\" AND ünknown = 1"), 19);
    assert_eq!(err_pos("name = 'ü' age = x"), 17);
}

#[test]
fn length_limit() {
    let padded = format!("age = 1{}", " ".repeat(MAX_FILTER_CHARS - 7));
    assert_eq!(sql(&padded), A1);
    let long = format!("{padded} ");
    assert_eq!(err(&long), (2000, "filter is too long (maximum 2000 characters)".into()));
    // The limit is in characters.
    let wide = format!("name = \"{}\"", "é".repeat(MAX_FILTER_CHARS - 9));
    assert!(parse(&wide, FIELDS, 1).is_ok());
}

#[test]
fn depth_limit() {
    let nest = |n: usize| format!("{}age = 1{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(sql(&nest(MAX_DEPTH)), A1);
    assert_eq!(err(&nest(MAX_DEPTH + 1)), (32, "filter is nested too deeply (maximum depth 32)".into()));
    let nots = |n: usize| format!("{}age = 1", "NOT ".repeat(n));
    assert!(parse(&nots(MAX_DEPTH), FIELDS, 1).is_ok());
    assert_eq!(err_pos(&nots(MAX_DEPTH + 1)), 128);
    assert_eq!(err_pos(&format!("{}age = 1", "-".repeat(MAX_DEPTH + 1))), 32);
    assert_eq!(err_pos(&format!("{}age = 1", "(-".repeat(17))), 32);
    // Hostile input is rejected without exhausting the stack.
    let hostile = "(".repeat(MAX_FILTER_CHARS);
    assert_eq!(err_pos(&hostile), 32);
}

#[test]
fn comparison_limit() {
    let many = |n: usize| vec!["age = 1"; n].join(" OR ");
    let f = ok(&many(MAX_COMPARISONS));
    assert_eq!(f.params.len(), 64);
    assert!(f.sql.contains("$64::bigint"));
    assert_eq!(err(&many(MAX_COMPARISONS + 1)), (704, "too many comparisons (maximum 64)".into()));
}

#[test]
fn error_display() {
    let e = parse("foo = 1", FIELDS, 1).unwrap_err();
    assert!(e.to_string().starts_with("invalid filter at position 0: unknown field 'foo'"));
}

#[test]
fn injection_attempts_stay_in_parameters() {
    let nasty = r#"x'); DROP TABLE contacts; --"#;
    let f = ok(&format!("name = \"{nasty}\""));
    assert_eq!(f.sql, "(c.name = $1::text)");
    assert_eq!(f.params, vec![text(nasty)]);
    let f = ok(r#"name:"' OR 1=1 --" OR tags:"$1) OR (true""#);
    assert_eq!(f.sql, "((c.name ILIKE $1::text) OR (c.tags @> ARRAY[$2::text]))");
    assert_eq!(f.params, vec![text("%' OR 1=1 --%"), text("$1) OR (true")]);
    let f = ok("name = Robert';DROP--");
    assert_eq!(f.params, vec![text("Robert';DROP--")]);
    assert!(!f.sql.contains("DROP"));
    // Field names come only from the allow-list.
    assert_eq!(err_pos("c.name = x"), 0);
    assert_eq!(err_pos("name;DROP = x"), 0);
}
