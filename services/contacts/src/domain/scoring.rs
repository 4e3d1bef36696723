//! Lead scoring: rules parsed from client input, and a contact's score,
//! grade and factors computed from the rules, its profile and its recent
//! engagement. Pure: the store gathers the inputs and keeps the result.

use chrono::{DateTime, Duration, Utc};
use rapport_proto::contacts::v1::scoring_rule::Condition;
use rapport_proto::contacts::v1::{
    ActivityKind, EngagementEvent, LeadGrade, LeadSource, ProfileField, ScoreFactor, ScoringRule,
};

use super::fields::{Violation, text};

/// The most rules that may exist.
pub const MAX_RULES: i64 = 200;
/// The longest window or decay, in days.
pub const MAX_DAYS: i32 = 3650;

/// The resource type of an activity behind a factor.
const ACTIVITY: &str = "rapport.contacts.v1.Activity";
/// The resource type of a case behind a factor.
const CASE: &str = "rapport.support.v1.Case";

/// Checks a rule's fields; the returned rule holds only what counts
/// (trimmed text, the condition's own fields).
pub fn parse_rule(input: &ScoringRule) -> Result<ScoringRule, Vec<Violation>> {
    let mut violations = Vec::new();
    let name = text("rule.name", &input.name, true, 200).unwrap_or_else(|violation| {
        violations.push(violation);
        String::new()
    });
    if input.points == 0 || !(-100..=100).contains(&input.points) {
        violations.push(Violation::new("rule.points", "must be between -100 and 100, and not 0"));
    }
    if !(0..=MAX_DAYS).contains(&input.decay_days) {
        violations.push(Violation::new("rule.decay_days", format!("must be between 0 and {MAX_DAYS}")));
    }
    let condition = match &input.condition {
        None => {
            violations
                .push(Violation::new("rule.condition", "a profile or an engagement condition is required"));
            None
        }
        Some(Condition::Profile(profile)) => {
            if input.decay_days != 0 {
                violations.push(Violation::new("rule.decay_days", "only engagement rules decay"));
            }
            let mut profile = profile.clone();
            match ProfileField::try_from(profile.field).unwrap_or_default() {
                ProfileField::JobTitle | ProfileField::Industry => {
                    match text("rule.profile.text", &profile.text, true, 100) {
                        Ok(value) => profile.text = value.to_lowercase(),
                        Err(violation) => violations.push(violation),
                    }
                }
                ProfileField::CompanySize => {
                    let (min, max) = (profile.min_employees, profile.max_employees);
                    if min < 0 || max < 0 || (max != 0 && max < min) {
                        violations.push(Violation::new(
                            "rule.profile.max_employees",
                            "sizes are 0 or more, and the maximum (0: none) is not below the minimum",
                        ));
                    }
                }
                ProfileField::LeadSource => {
                    if LeadSource::try_from(profile.lead_source).unwrap_or_default()
                        == LeadSource::Unspecified
                    {
                        violations.push(Violation::new("rule.profile.lead_source", "is required"));
                    }
                }
                ProfileField::Unspecified => {
                    violations.push(Violation::new("rule.profile.field", "is required"));
                }
            }
            Some(Condition::Profile(profile))
        }
        Some(Condition::Engagement(engagement)) => {
            match EngagementEvent::try_from(engagement.event).unwrap_or_default() {
                EngagementEvent::Unspecified => {
                    violations.push(Violation::new("rule.engagement.event", "is required"));
                }
                EngagementEvent::Activity => {
                    let kind = ActivityKind::try_from(engagement.activity_kind);
                    if matches!(kind, Err(_) | Ok(ActivityKind::Task)) {
                        violations.push(Violation::new(
                            "rule.engagement.activity_kind",
                            "must be a call, meeting, email or note kind (or unset for any)",
                        ));
                    }
                }
                EngagementEvent::CaseOpened => {}
            }
            if !(1..=MAX_DAYS).contains(&engagement.within_days) {
                violations.push(Violation::new(
                    "rule.engagement.within_days",
                    format!("must be between 1 and {MAX_DAYS}"),
                ));
            }
            Some(Condition::Engagement(*engagement))
        }
    };
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(ScoringRule {
        name,
        points: input.points,
        condition,
        decay_days: input.decay_days,
        enabled: input.enabled,
        ..ScoringRule::default()
    })
}

/// Who the person is, as the profile rules see them.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Job title.
    pub job_title: String,
    /// Their company's industry (empty without a company).
    pub industry: String,
    /// Their company's size (`None` without a company).
    pub employees: Option<i32>,
    /// Lead source.
    pub lead_source: LeadSource,
}

/// One thing the person did.
#[derive(Debug, Clone, PartialEq)]
pub struct Engaged {
    /// What: an activity of a kind, or a case opened (`None`).
    pub activity_kind: Option<ActivityKind>,
    /// When.
    pub time: DateTime<Utc>,
    /// The record's id.
    pub id: String,
}

/// A computed score.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// 0-100.
    pub score: i32,
    /// From the profile rules.
    pub grade: LeadGrade,
    /// The rules that counted.
    pub factors: Vec<ScoreFactor>,
    /// When the score next changes by itself (an event leaving its window
    /// or decaying a day further); `None` when it never does.
    pub stale_at: Option<DateTime<Utc>>,
}

/// The score of a person with `profile` and `engagement` under `rules`
/// (only enabled ones count) at `now`. Without any enabled profile-fit
/// rule there is nothing to grade by: the grade stays UNSPECIFIED.
pub fn score(rules: &[ScoringRule], profile: &Profile, engagement: &[Engaged], now: DateTime<Utc>) -> Scored {
    let mut factors = Vec::new();
    let mut fit = 0;
    let mut total = 0;
    let mut stale_at: Option<DateTime<Utc>> = None;
    for rule in rules.iter().filter(|rule| rule.enabled) {
        match &rule.condition {
            Some(Condition::Profile(condition)) => {
                if let Some(reason) = profile_reason(condition, profile) {
                    fit += rule.points;
                    total += rule.points;
                    factors.push(factor(rule, rule.points, reason, None));
                }
            }
            Some(Condition::Engagement(condition)) => {
                let window = Duration::days(i64::from(condition.within_days));
                let wanted =
                    |event: &&Engaged| match EngagementEvent::try_from(condition.event).unwrap_or_default() {
                        EngagementEvent::Activity => match ActivityKind::try_from(condition.activity_kind) {
                            Ok(ActivityKind::Unspecified) => event.activity_kind.is_some(),
                            Ok(kind) => event.activity_kind == Some(kind),
                            Err(_) => false,
                        },
                        EngagementEvent::CaseOpened => event.activity_kind.is_none(),
                        EngagementEvent::Unspecified => false,
                    };
                let latest = engagement
                    .iter()
                    .filter(wanted)
                    .filter(|event| event.time <= now && now - event.time < window)
                    .max_by_key(|event| event.time);
                let Some(event) = latest else { continue };
                let (points, next_change) = decayed(rule, event.time, window, now);
                stale_at = earliest(stale_at, Some(next_change));
                if points != 0 {
                    total += points;
                    let what = event
                        .activity_kind
                        .map_or("case opened".to_owned(), |kind| super::activity::kind_name(kind).to_owned());
                    let reason = format!("{what} on {}", event.time.format("%Y-%m-%d"));
                    factors.push(factor(rule, points, reason, Some(event)));
                }
            }
            None => {}
        }
    }
    let graded =
        rules.iter().any(|rule| rule.enabled && matches!(rule.condition, Some(Condition::Profile(_))));
    let grade = if graded { grade(fit.clamp(0, 100)) } else { LeadGrade::Unspecified };
    Scored { score: total.clamp(0, 100), grade, factors, stale_at }
}

/// An engagement rule's points for an event at `time`, and when they next
/// change (a day's decay, or the window's end).
fn decayed(
    rule: &ScoringRule,
    time: DateTime<Utc>,
    window: Duration,
    now: DateTime<Utc>,
) -> (i32, DateTime<Utc>) {
    let leaves = time + window;
    if rule.decay_days == 0 {
        return (rule.points, leaves);
    }
    let age_days = (now - time).num_days();
    let decay_days = i64::from(rule.decay_days);
    let left = (decay_days - age_days).max(0);
    let points = i32::try_from(i64::from(rule.points) * left / decay_days).unwrap_or(0);
    let next_day = time + Duration::days(age_days + 1);
    (points, next_day.min(leaves))
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn profile_reason(
    condition: &rapport_proto::contacts::v1::ProfileCondition,
    profile: &Profile,
) -> Option<String> {
    match ProfileField::try_from(condition.field).unwrap_or_default() {
        ProfileField::JobTitle => profile
            .job_title
            .to_lowercase()
            .contains(&condition.text)
            .then(|| format!("job title {:?} contains {:?}", profile.job_title, condition.text)),
        ProfileField::Industry => profile
            .industry
            .to_lowercase()
            .contains(&condition.text)
            .then(|| format!("industry {:?} contains {:?}", profile.industry, condition.text)),
        ProfileField::CompanySize => {
            let employees = profile.employees?;
            let fits = employees >= condition.min_employees
                && (condition.max_employees == 0 || employees <= condition.max_employees);
            fits.then(|| format!("company size {employees}"))
        }
        ProfileField::LeadSource => (profile.lead_source as i32 == condition.lead_source)
            .then(|| format!("lead source {}", profile.lead_source.as_str_name())),
        ProfileField::Unspecified => None,
    }
}

fn factor(rule: &ScoringRule, points: i32, reason: String, event: Option<&Engaged>) -> ScoreFactor {
    ScoreFactor {
        rule_id: rule.id.clone(),
        rule_name: rule.name.clone(),
        points,
        reason,
        event_resource_type: event
            .map(|event| if event.activity_kind.is_some() { ACTIVITY } else { CASE }.to_owned())
            .unwrap_or_default(),
        event_resource_id: event.map(|event| event.id.clone()).unwrap_or_default(),
        event_time: event.map(|event| rapport_kit::changelog::timestamp(event.time)),
    }
}

/// The grade of a profile-fit sum (0-100).
pub fn grade(fit: i32) -> LeadGrade {
    match fit {
        75.. => LeadGrade::A,
        50..=74 => LeadGrade::B,
        25..=49 => LeadGrade::C,
        _ => LeadGrade::D,
    }
}

/// A grade's stored name (`A`).
pub fn grade_name(grade: LeadGrade) -> &'static str {
    grade.as_str_name().trim_start_matches("LEAD_GRADE_")
}

/// A stored grade back to the enum.
pub fn grade_from_name(name: &str) -> Result<LeadGrade, sqlx::Error> {
    rapport_kit::db::stored_enum("lead_grade", "LEAD_GRADE_", name, LeadGrade::from_str_name)
}

/// Every stored grade, for filters.
pub const GRADE_NAMES: &[&str] = &["UNSPECIFIED", "A", "B", "C", "D"];

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rapport_proto::contacts::v1::{EngagementCondition, ProfileCondition};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap()
    }

    fn rule(name: &str, points: i32, condition: Condition, decay_days: i32) -> ScoringRule {
        ScoringRule {
            id: name.into(),
            name: name.into(),
            points,
            condition: Some(condition),
            decay_days,
            enabled: true,
            ..ScoringRule::default()
        }
    }

    fn rules() -> Vec<ScoringRule> {
        vec![
            rule(
                "cxo",
                40,
                Condition::Profile(ProfileCondition {
                    field: ProfileField::JobTitle.into(),
                    text: "chief".into(),
                    ..ProfileCondition::default()
                }),
                0,
            ),
            rule(
                "mid-size",
                20,
                Condition::Profile(ProfileCondition {
                    field: ProfileField::CompanySize.into(),
                    min_employees: 50,
                    max_employees: 500,
                    ..ProfileCondition::default()
                }),
                0,
            ),
            rule(
                "called",
                30,
                Condition::Engagement(EngagementCondition {
                    event: EngagementEvent::Activity.into(),
                    activity_kind: ActivityKind::Call.into(),
                    within_days: 30,
                }),
                10,
            ),
            rule(
                "case",
                -20,
                Condition::Engagement(EngagementCondition {
                    event: EngagementEvent::CaseOpened.into(),
                    within_days: 7,
                    ..EngagementCondition::default()
                }),
                0,
            ),
        ]
    }

    #[test]
    fn profile_and_engagement_add_up_and_decay() {
        let profile = Profile {
            job_title: "Chief Technology Officer".into(),
            employees: Some(120),
            ..Profile::default()
        };
        let call = Engaged {
            activity_kind: Some(ActivityKind::Call),
            time: now() - Duration::days(4),
            id: "a1".into(),
        };
        let scored = score(&rules(), &profile, std::slice::from_ref(&call), now());
        // 40 + 20 + 30 × 6/10 = 78; the fit (60) grades B.
        assert_eq!((scored.score, scored.grade), (78, LeadGrade::B));
        let names: Vec<&str> = scored.factors.iter().map(|factor| factor.rule_name.as_str()).collect();
        assert_eq!(names, ["cxo", "mid-size", "called"]);
        assert_eq!(scored.factors[2].points, 18);
        assert_eq!(scored.factors[2].event_resource_id, "a1");
        assert_eq!(scored.stale_at, Some(call.time + Duration::days(5)), "the next day's decay");
        // A case lowers it; a note does not count for the call rule.
        let case = Engaged { activity_kind: None, time: now() - Duration::days(1), id: "c1".into() };
        let note = Engaged { activity_kind: Some(ActivityKind::Note), time: now(), id: "n1".into() };
        let scored = score(&rules(), &profile, &[call, case, note], now());
        assert_eq!(scored.score, 58);
    }

    #[test]
    fn old_events_disabled_rules_and_clamping() {
        let old = Engaged {
            activity_kind: Some(ActivityKind::Call),
            time: now() - Duration::days(31),
            id: "a".into(),
        };
        let scored = score(&rules(), &Profile::default(), &[old], now());
        assert_eq!((scored.score, scored.grade, scored.stale_at), (0, LeadGrade::D, None));
        let mut all = rules();
        all[0].enabled = false;
        let profile = Profile { job_title: "Chief".into(), employees: Some(10), ..Profile::default() };
        assert_eq!(score(&all, &profile, &[], now()).score, 0);
        let big = vec![
            rule("a", 100, all[0].condition.clone().unwrap(), 0),
            rule("b", 100, all[0].condition.clone().unwrap(), 0),
        ];
        let scored = score(&big, &profile, &[], now());
        assert_eq!((scored.score, scored.grade), (100, LeadGrade::A));
        // Engagement rules alone give a score but no grade.
        let engagement_only = vec![rules()[2].clone()];
        assert_eq!(score(&engagement_only, &profile, &[], now()).grade, LeadGrade::Unspecified);
    }

    #[test]
    fn bad_rules_are_refused_field_by_field() {
        let bad = ScoringRule {
            name: String::new(),
            points: 0,
            decay_days: 5,
            condition: Some(Condition::Profile(ProfileCondition {
                field: ProfileField::CompanySize.into(),
                min_employees: 10,
                max_employees: 5,
                ..ProfileCondition::default()
            })),
            ..ScoringRule::default()
        };
        let fields: Vec<String> = parse_rule(&bad).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["rule.name", "rule.points", "rule.decay_days", "rule.profile.max_employees"]);
        let task = ScoringRule {
            name: "x".into(),
            points: 5,
            condition: Some(Condition::Engagement(EngagementCondition {
                event: EngagementEvent::Activity.into(),
                activity_kind: ActivityKind::Task.into(),
                within_days: 0,
            })),
            ..ScoringRule::default()
        };
        let fields: Vec<String> = parse_rule(&task).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["rule.engagement.activity_kind", "rule.engagement.within_days"]);
    }
}
