//! `SatisfactionService`: see `proto/rapport/support/v1/satisfaction.proto`.
//! Public: the survey token is the credential, so no principal is read.

use rapport_kit::error::Problem;
use rapport_kit::fields::{Violation, long_text};
use rapport_kit::ratelimit::Decision;
use rapport_proto::support::v1::satisfaction_service_server::SatisfactionService;
use rapport_proto::support::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::error::Error;
use crate::store::surveys;

type Result<T> = std::result::Result<Response<T>, Status>;

/// The client a survey answer comes from: the first `x-forwarded-for` hop
/// (set by the load balancer in front), else the peer address.
fn client_of<T>(request: &Request<T>) -> String {
    let forwarded = request
        .metadata()
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(|first| first.trim().chars().take(64).collect::<String>())
        .filter(|first| !first.is_empty());
    forwarded
        .or_else(|| request.remote_addr().map(|addr| addr.ip().to_string()))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn limited(retry_after: std::time::Duration) -> Status {
    Error::Problem(
        Problem::resource_exhausted("RATE_LIMITED", "too many survey answers from this client; retry later")
            .retry_after(retry_after),
    )
    .into()
}

#[tonic::async_trait]
impl SatisfactionService for Api {
    async fn submit_satisfaction(&self, request: Request<SubmitSatisfactionRequest>) -> Result<Satisfaction> {
        // Per client, and for all clients together (a client naming
        // itself differently in x-forwarded-for gets at most the total).
        let client = client_of(&request);
        let namespace = &self.state.survey_namespace;
        for key in [format!("support-survey:{namespace}:{client}"), format!("support-survey:{namespace}:*")] {
            if let Decision::Limited { retry_after } = self.state.survey_limiter.check(&key).await {
                return Err(limited(retry_after));
            }
        }
        let request = request.into_inner();
        let mut violations = Vec::new();
        let token = request.token.trim();
        if token.is_empty()
            || token.len() > 100
            || !token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            violations.push(Violation::new("token", "must be the token of a survey link"));
        }
        if !(1..=5).contains(&request.rating) {
            violations.push(Violation::new("rating", "must be 1 to 5"));
        }
        let comment = long_text("comment", &request.comment, false, 2000)
            .map_err(|v| violations.push(v))
            .unwrap_or_default();
        if !violations.is_empty() {
            return Err(Error::from(violations).into());
        }
        let answered =
            surveys::answer(&self.state.pool, token, request.rating, &comment, self.state.ctx().now).await;
        self.state.written(&answered);
        Ok(Response::new(answered?))
    }
}
