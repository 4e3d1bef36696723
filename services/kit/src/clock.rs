//! The time source a service reads instead of the system clock where time
//! drives behaviour (SLA clocks, task reminders), so tests can move it.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// A clock: the system's, or one a test controls.
#[derive(Clone)]
pub struct Now(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Now {
    /// The system clock (microsecond precision, as stored).
    pub fn system() -> Now {
        Now(Arc::new(crate::db::now))
    }

    /// A clock read from `source`.
    pub fn from_fn(source: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Now {
        Now(Arc::new(source))
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl std::fmt::Debug for Now {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Now")
    }
}
