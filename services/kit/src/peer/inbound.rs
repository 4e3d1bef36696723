//! What an inbound call lends the calls it makes ([`Inbound`]), and whose
//! authority a call carries ([`OnBehalf`]).

use std::time::{Duration, Instant};

use tonic::metadata::AsciiMetadataValue;

/// What an inbound call lends the calls it makes: its credentials and its
/// deadline. `Debug` shows neither credential.
#[derive(Clone, Default)]
pub struct Inbound {
    pub(super) authorization: Option<AsciiMetadataValue>,
    pub(super) api_key: Option<AsciiMetadataValue>,
    pub(super) deadline: Option<Instant>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |present: bool| if present { "<redacted>" } else { "none" };
        f.debug_struct("Inbound")
            .field("authorization", &shown(self.authorization.is_some()))
            .field("api_key", &shown(self.api_key.is_some()))
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Inbound {
    /// The credentials and deadline of `request`, as it arrives.
    pub fn of<T>(request: &tonic::Request<T>) -> Inbound {
        let metadata = request.metadata();
        let deadline = metadata
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .and_then(|timeout| Instant::now().checked_add(timeout));
        Inbound {
            authorization: metadata.get("authorization").cloned(),
            api_key: metadata.get("x-api-key").cloned(),
            deadline,
        }
    }
}

/// Whose authority a call carries.
#[derive(Debug, Clone)]
pub enum OnBehalf {
    /// The inbound caller's: the callee applies the caller's permissions.
    Caller(Inbound),
    /// The service's own ([`Identity`]): feed consumers and workers.
    Service,
}

impl OnBehalf {
    /// On behalf of the caller of `request`.
    pub fn caller<T>(request: &tonic::Request<T>) -> OnBehalf {
        OnBehalf::Caller(Inbound::of(request))
    }
}

/// A `grpc-timeout` header value (`<digits><unit>`, unit one of H M S m u n).
pub(super) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}
