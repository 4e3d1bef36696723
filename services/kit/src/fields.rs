//! Field-level building blocks every service's domain layer uses: the
//! [`Violation`] of one input field, typed UUID ids ([`typed_id!`]), text
//! trimming with length limits, and the INVALID_ARGUMENT [`Problem`] that
//! lists every violation as a `BadRequest` field violation.

use crate::problem::Problem;

/// One invalid field: its path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {description}")]
pub struct Violation {
    /// Field path as the client wrote it, e.g. `contact.email`.
    pub field: String,
    /// What is wrong, in words a frontend developer can show.
    pub description: String,
}

impl Violation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Violation {
        Violation { field: field.into(), description: description.into() }
    }
}

/// Declares a typed UUIDv7 id: `typed_id!(DealId, "deal")` gives `DealId`
/// with `generate`, `parse(field, raw)` (a [`Violation`] naming `field` when
/// `raw` is not a UUID), `uuid`, `From<Uuid>` and `Display`.
#[macro_export]
macro_rules! typed_id {
    ($name:ident, $what:literal) => {
        #[doc = concat!("The id of a ", $what, " (UUIDv7).")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new time-ordered id.
            pub fn generate() -> $name {
                $name(uuid::Uuid::now_v7())
            }

            /// Parses the canonical text form; `field` names the input on error.
            pub fn parse(field: &str, raw: &str) -> Result<$name, $crate::fields::Violation> {
                uuid::Uuid::parse_str(raw.trim()).map($name).map_err(|_| {
                    $crate::fields::Violation::new(
                        field,
                        format!("{raw:?} is not a valid {} id (a UUID)", $what),
                    )
                })
            }

            /// The UUID.
            pub fn uuid(self) -> uuid::Uuid {
                self.0
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(id: uuid::Uuid) -> $name {
                $name(id)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

/// Trims `raw` and checks its length in characters; `required` forbids empty.
pub fn text(field: &str, raw: &str, required: bool, max_chars: usize) -> Result<String, Violation> {
    let trimmed = raw.trim();
    if required && trimmed.is_empty() {
        return Err(Violation::new(field, "is required and must not be blank"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(Violation::new(field, format!("must be at most {max_chars} characters")));
    }
    if trimmed.chars().any(|c| c.is_control()) {
        return Err(Violation::new(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// Like [`text`] for several lines (a description, a comment body): line
/// breaks and tabs are kept; other control characters (NUL among them)
/// are refused. Only trailing and leading whitespace is trimmed.
pub fn long_text(field: &str, raw: &str, required: bool, max_chars: usize) -> Result<String, Violation> {
    let trimmed = raw.trim();
    if required && trimmed.is_empty() {
        return Err(Violation::new(field, "is required and must not be blank"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(Violation::new(field, format!("must be at most {max_chars} characters")));
    }
    if trimmed.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(Violation::new(
            field,
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A protobuf timestamp as a time: years 1900 to 9999, whole
/// microseconds (as PostgreSQL stores them; finer digits are dropped).
pub fn time(field: &str, raw: &prost_types::Timestamp) -> Result<chrono::DateTime<chrono::Utc>, Violation> {
    use chrono::Datelike as _;
    let nanos = u32::try_from(raw.nanos).ok().filter(|nanos| *nanos < 1_000_000_000);
    nanos
        .and_then(|nanos| chrono::DateTime::from_timestamp(raw.seconds, nanos - nanos % 1000))
        .filter(|time| (1900..=9999).contains(&time.year()))
        .ok_or_else(|| Violation::new(field, "must be a valid time between the years 1900 and 9999"))
}

/// A protobuf duration as whole seconds between 0 and `max_seconds`.
pub fn duration_seconds(
    field: &str,
    raw: &prost_types::Duration,
    max_seconds: i64,
) -> Result<i64, Violation> {
    if raw.nanos != 0 || raw.seconds < 0 || raw.seconds > max_seconds {
        return Err(Violation::new(field, format!("must be whole seconds between 0 and {max_seconds}")));
    }
    Ok(raw.seconds)
}

/// The most field violations one error lists; the rest are counted.
pub const MAX_VIOLATIONS: usize = 50;

/// The most paths an update mask may name.
pub const MAX_MASK_PATHS: usize = 64;

/// Refuses a list longer than `max`: call it before any per-item work, so
/// a request with a huge list costs one comparison.
pub fn cap<T>(field: &str, items: &[T], max: usize) -> Result<(), Violation> {
    if items.len() > max {
        Err(Violation::new(field, format!("at most {max} entries, got {}", items.len())))
    } else {
        Ok(())
    }
}

/// [`cap`] for an update mask's paths (field `update_mask`).
pub fn cap_mask(paths: &[String]) -> Result<(), Violation> {
    cap("update_mask", paths, MAX_MASK_PATHS)
}

/// INVALID_ARGUMENT with one `BadRequest` field violation per entry (at
/// most [`MAX_VIOLATIONS`]; when more were found, a last one on `""` says
/// how many were left out) and a message summarizing them.
pub fn invalid(mut violations: Vec<Violation>) -> Problem {
    if violations.len() > MAX_VIOLATIONS {
        let more = violations.len() - MAX_VIOLATIONS;
        violations.truncate(MAX_VIOLATIONS);
        violations.push(Violation::new("", format!("{more} more violations not listed; fix these first")));
    }
    let summary =
        violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ");
    violations
        .into_iter()
        .fold(Problem::new(tonic::Code::InvalidArgument, "INVALID_ARGUMENT", summary), |problem, v| {
            problem.field(v.field, v.description)
        })
}
