//! `grpc-timeout` headers: the deadline a client sent, and the one the
//! gateway forwards.

use std::time::Duration;

use http::HeaderValue;

/// Parses a `grpc-timeout` header (`<digits><unit>`, unit H M S m u n).
pub fn parse_grpc_timeout(value: &HeaderValue) -> Option<Duration> {
    let value = value.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Formats a deadline as a `grpc-timeout` value (at most eight digits).
pub fn grpc_timeout_value(deadline: Duration) -> HeaderValue {
    let millis = deadline.as_millis();
    let text = if millis <= 99_999_999 { format!("{millis}m") } else { format!("{}S", deadline.as_secs()) };
    HeaderValue::try_from(text).unwrap_or(HeaderValue::from_static("30S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_and_format() {
        let parse = |raw: &'static str| parse_grpc_timeout(&HeaderValue::from_static(raw));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("5u"), Some(Duration::from_micros(5)));
        assert_eq!(parse("123456789m"), None);
        assert_eq!(parse("m"), None);
        assert_eq!(parse("10x"), None);
        assert_eq!(grpc_timeout_value(Duration::from_millis(1500)), "1500m");
        assert_eq!(grpc_timeout_value(Duration::from_secs(200_000)), "200000S");
    }
}
