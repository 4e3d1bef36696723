//! Unit tests: SQL text and parameters per field kind and operator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

pub(super) const STAGES: &[&str] = &["LEAD", "CUSTOMER", "CHURNED"];

/// The allow-list used by the unit tests (columns are qualified to prove they are
/// used verbatim).
pub(super) const FIELDS: &[Field] = &[
    Field { name: "name", column: "c.name", kind: FieldKind::Text },
    Field { name: "id", column: "c.id", kind: FieldKind::Uuid },
    Field { name: "age", column: "c.age", kind: FieldKind::Integer },
    Field { name: "active", column: "c.active", kind: FieldKind::Bool },
    Field { name: "create_time", column: "c.created_at", kind: FieldKind::Timestamp },
    Field {
        name: "stage",
        column: "c.stage",
        kind: FieldKind::Enum { prefix: "LIFECYCLE_STAGE_", values: STAGES },
    },
    Field { name: "tags", column: "c.tags", kind: FieldKind::TextArray },
    Field { name: "member_ids", column: "c.member_ids", kind: FieldKind::UuidArray },
];

pub(super) fn ok(filter: &str) -> SqlFilter {
    parse(filter, FIELDS, 1).unwrap().unwrap()
}

pub(super) fn sql(filter: &str) -> String {
    ok(filter).sql
}

/// The error position and message.
pub(super) fn err(filter: &str) -> (usize, String) {
    let e = parse(filter, FIELDS, 1).unwrap_err();
    (e.position, e.message)
}

pub(super) fn err_pos(filter: &str) -> usize {
    err(filter).0
}

pub(super) fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

fn one(filter: &str, expected_sql: &str, expected: SqlValue) {
    let f = ok(filter);
    assert_eq!(f.sql, expected_sql, "filter {filter:?}");
    assert_eq!(f.params, vec![expected], "filter {filter:?}");
}

fn ts(s: &str) -> SqlValue {
    SqlValue::Timestamp(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc())
}

const UUID: &str = "0190f3c4-1d2e-7a3b-8c4d-5e6f708192a3";

#[test]
fn empty_and_blank_filters_are_none() {
    assert_eq!(parse("", FIELDS, 1).unwrap(), None);
    assert_eq!(parse("  \t\n ", FIELDS, 1).unwrap(), None);
}

#[test]
fn text_comparisons() {
    one(r#"name = "ada""#, "(c.name = $1::text)", text("ada"));
    one("name=ada", "(c.name = $1::text)", text("ada"));
    one("name != 'ada'", "(c.name IS DISTINCT FROM $1::text)", text("ada"));
    one("name < b", "(c.name < $1::text)", text("b"));
    one("name <= b", "(c.name <= $1::text)", text("b"));
    one("name > b", "(c.name > $1::text)", text("b"));
    one("name >= b", "(c.name >= $1::text)", text("b"));
    one(r#"name = """#, "(c.name = $1::text)", text(""));
}

#[test]
fn text_has_is_escaped_ilike() {
    one("name:Ada", "(c.name ILIKE $1::text)", text("%Ada%"));
    one(r#"name:"50%_off\\""#, "(c.name ILIKE $1::text)", text(r"%50\%\_off\\%"));
    // A trailing wildcard is redundant for "contains".
    one("name:ada*", "(c.name ILIKE $1::text)", text("%ada%"));
}

#[test]
fn text_prefix_match() {
    one("name = ada*", "(c.name LIKE $1::text)", text("ada%"));
    one(r#"name = "a_b%*""#, "(c.name LIKE $1::text)", text(r"a\_b\%%"));
    one("name != 'ada*'", "(c.name IS NULL OR c.name NOT LIKE $1::text)", text("ada%"));
    // Escaped or non-trailing stars are literal.
    one(r#"name = "ada\*""#, "(c.name = $1::text)", text("ada*"));
    one("name = a*b", "(c.name = $1::text)", text("a*b"));
    assert_eq!(err("name < ada*"), (7, "wildcard '*' is only supported with =, != and :".into()));
}

#[test]
fn presence() {
    let cases = [
        ("name:*", "(c.name IS NOT NULL AND length(c.name) > 0)"),
        ("id:*", "(c.id IS NOT NULL)"),
        ("age : *", "(c.age IS NOT NULL)"),
        ("active:*", "(c.active IS NOT NULL)"),
        ("create_time:*", "(c.created_at IS NOT NULL)"),
        ("stage:*", "(c.stage IS NOT NULL)"),
        ("tags:*", "(COALESCE(cardinality(c.tags), 0) > 0)"),
    ];
    for (filter, expected) in cases {
        let f = ok(filter);
        assert_eq!(f.sql, expected);
        assert!(f.params.is_empty());
    }
    // A quoted star is a value, not presence.
    one(r#"name:"*""#, "(c.name ILIKE $1::text)", text("%%"));
    one(r#"tags:"\*""#, "(c.tags @> ARRAY[$1::text])", text("*"));
    assert_eq!(err_pos(r#"tags:"*""#), 5);
}

#[test]
fn uuid_comparisons() {
    let u = SqlValue::Uuid(uuid::Uuid::parse_str(UUID).unwrap());
    one(&format!("id = {UUID}"), "(c.id = $1::uuid)", u.clone());
    one(&format!("id != \"{UUID}\""), "(c.id IS DISTINCT FROM $1::uuid)", u);
    assert_eq!(err("id = nope"), (5, "expected a UUID, found 'nope'".into()));
    let (pos, msg) = err(&format!("id < {UUID}"));
    assert_eq!(pos, 3);
    assert_eq!(msg, "operator '<' is not supported for uuid field 'id'; supported: =, !=, :*");
    assert_eq!(err(&format!("id:{UUID}")).0, 2);
    assert_eq!(err("id = abc*"), (5, "wildcard '*' is not supported for uuid field 'id'".into()));
}

#[test]
fn integer_comparisons() {
    let i = SqlValue::Integer;
    one("age = 42", "(c.age = $1::bigint)", i(42));
    one("age != 42", "(c.age IS DISTINCT FROM $1::bigint)", i(42));
    one("age < -5", "(c.age < $1::bigint)", i(-5));
    one("age <= '7'", "(c.age <= $1::bigint)", i(7));
    one("age > 0", "(c.age > $1::bigint)", i(0));
    one("age>=9223372036854775807", "(c.age >= $1::bigint)", i(i64::MAX));
    assert_eq!(err("age = 4x"), (6, "expected a 64-bit integer, found '4x'".into()));
    assert_eq!(err_pos("age = 9223372036854775808"), 6);
    assert_eq!(err_pos("age = 1.5"), 6);
    let (pos, msg) = err("age:5");
    assert_eq!(pos, 3);
    assert_eq!(msg, "operator ':' is only supported as 'age:*' (presence) for integer field 'age'");
}

#[test]
fn bool_comparisons() {
    one("active = true", "(c.active = $1::boolean)", SqlValue::Bool(true));
    one("active = FALSE", "(c.active = $1::boolean)", SqlValue::Bool(false));
    one("active != false", "(c.active IS DISTINCT FROM $1::boolean)", SqlValue::Bool(false));
    assert_eq!(err("active = yes"), (9, "expected true or false, found 'yes'".into()));
    assert_eq!(err_pos("active > true"), 7);
    assert_eq!(err_pos("active:true"), 6);
}

#[test]
fn timestamp_comparisons() {
    let t = "2024-01-02T03:04:05Z";
    one(&format!("create_time = {t}"), "(c.created_at = $1::timestamptz)", ts(t));
    one(&format!("create_time != \"{t}\""), "(c.created_at IS DISTINCT FROM $1::timestamptz)", ts(t));
    one(&format!("create_time<{t}"), "(c.created_at < $1::timestamptz)", ts(t));
    one(&format!("create_time <= '{t}'"), "(c.created_at <= $1::timestamptz)", ts(t));
    one(&format!("create_time > {t}"), "(c.created_at > $1::timestamptz)", ts(t));
    one(&format!("create_time >= {t}"), "(c.created_at >= $1::timestamptz)", ts(t));
    // Offsets are normalised to UTC; fractional seconds are kept.
    let f = ok("create_time > 2024-01-02T05:04:05.250+02:00");
    assert_eq!(f.params, vec![ts("2024-01-02T03:04:05.250Z")]);
    let (pos, msg) = err("create_time > 2024-01-02");
    assert_eq!(pos, 14);
    assert_eq!(msg, "expected an RFC 3339 timestamp such as 2024-01-02T03:04:05Z, found '2024-01-02'");
    assert_eq!(err_pos(&format!("create_time:{t}")), 11);
}

#[test]
fn enum_comparisons() {
    for value in
        ["CUSTOMER", "customer", "LIFECYCLE_STAGE_CUSTOMER", "lifecycle_stage_Customer", "'CUSTOMER'"]
    {
        one(&format!("stage = {value}"), "(c.stage = $1::text)", text("CUSTOMER"));
    }
    one("stage != LEAD", "(c.stage IS DISTINCT FROM $1::text)", text("LEAD"));
    let (pos, msg) = err("stage = PROSPECT");
    assert_eq!(pos, 8);
    assert_eq!(msg, "unknown value 'PROSPECT' for field 'stage'; allowed values: LEAD, CUSTOMER, CHURNED");
    assert_eq!(err_pos("stage = LIFECYCLE_STAGE_"), 8);
    assert_eq!(err_pos("stage < LEAD"), 6);
    assert_eq!(err_pos("stage:LEAD"), 5);
    assert_eq!(err_pos("stage = LEAD*"), 8);
}

#[test]
fn enum_prefix_without_underscore_and_empty_prefix() {
    const F: &[Field] = &[
        Field { name: "a", column: "a", kind: FieldKind::Enum { prefix: "STAGE", values: STAGES } },
        Field { name: "b", column: "b", kind: FieldKind::Enum { prefix: "", values: STAGES } },
    ];
    let p = |s| parse(s, F, 1).unwrap().unwrap().params;
    assert_eq!(p("a = STAGE_LEAD"), vec![text("LEAD")]);
    assert_eq!(p("a = stageLEAD"), vec![text("LEAD")]);
    assert_eq!(p("b = lead"), vec![text("LEAD")]);
    assert!(parse("b = STAGE_LEAD", F, 1).is_err());
}

#[test]
fn text_array_has() {
    one("tags:vip", "(c.tags @> ARRAY[$1::text])", text("vip"));
    one(r#"tags : "VIP list""#, "(c.tags @> ARRAY[$1::text])", text("VIP list"));
    let (pos, msg) = err("tags = vip");
    assert_eq!(pos, 5);
    assert_eq!(msg, "operator '=' is not supported for text array field 'tags'; supported: :");
    assert_eq!(err_pos("tags != vip"), 5);
    assert_eq!(err_pos("tags:vip*"), 5);
}

#[test]
fn uuid_array_has() {
    let u = SqlValue::Uuid(uuid::Uuid::parse_str(UUID).unwrap());
    one(&format!("member_ids:\"{UUID}\""), "(c.member_ids @> ARRAY[$1::uuid])", u);
    assert_eq!(err("member_ids:nope"), (11, "expected a UUID, found 'nope'".into()));
    let (pos, msg) = err(&format!("member_ids = {UUID}"));
    assert_eq!(pos, 11);
    assert_eq!(msg, "operator '=' is not supported for uuid array field 'member_ids'; supported: :");
    assert_eq!(sql("member_ids:*"), "(COALESCE(cardinality(c.member_ids), 0) > 0)");
}

#[test]
fn placeholders_start_at_first_placeholder() {
    let f = parse("name = a OR age > 1 OR tags:x", FIELDS, 3).unwrap().unwrap();
    assert_eq!(f.sql, "((c.name = $3::text) OR (c.age > $4::bigint) OR (c.tags @> ARRAY[$5::text]))");
    assert_eq!(f.params, vec![text("a"), SqlValue::Integer(1), text("x")]);
    // 0 is treated as 1: PostgreSQL placeholders start at $1.
    assert_eq!(parse("age = 1", FIELDS, 0).unwrap().unwrap().sql, "(c.age = $1::bigint)");
}

#[test]
fn nul_characters_are_rejected() {
    assert_eq!(err("name = \"a\0b\""), (7, "values cannot contain NUL characters".into()));
}
