//! The HTTP handlers: extract, decide (inline, microseconds of work), record, answer.

use std::{sync::Arc, time::Instant};

use axum::{
    body::{Body, HttpBody},
    extract::{Extension, Request as HttpRequest, State},
    http::{Method, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use http_body_util::BodyExt;

use super::{
    AppState, BODY_LIMIT, MUTATE_PATH, VALIDATE_PATH,
    error::ApiError,
    metrics::{Endpoint, Outcome},
    review,
};
use crate::policy::ValidPolicy;

/// How much of an oversized body is read (and discarded) before the connection is closed.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// `POST /mutate/<policy>` (the policy was resolved by [`observe`]).
pub(super) async fn mutate(
    State(state): State<Arc<AppState>>,
    Extension(policy): Extension<Arc<ValidPolicy>>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    admit(&state, Endpoint::Mutate, &policy, &body)
}

/// `POST /validate/<policy>` (the policy was resolved by [`observe`]).
pub(super) async fn validate(
    State(state): State<Arc<AppState>>,
    Extension(policy): Extension<Arc<ValidPolicy>>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    admit(&state, Endpoint::Validate, &policy, &body)
}

/// Reads at most [`BODY_LIMIT`] bytes. A larger body is read on, and discarded, up to
/// [`DRAIN_LIMIT`], so the client gets its 413 instead of a reset connection.
async fn read_body(mut body: Body) -> Result<Vec<u8>, ApiError> {
    let expected = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(expected.min(BODY_LIMIT));
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(ApiError::Body)?.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= BODY_LIMIT {
            out.extend_from_slice(&data);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > BODY_LIMIT {
        return Err(ApiError::TooLarge { limit: BODY_LIMIT });
    }
    Ok(out)
}

/// Parses the review, decides with the policy, records, answers.
fn admit(
    state: &AppState,
    endpoint: Endpoint,
    policy: &ValidPolicy,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut request = review::parse(body)?;
    let span = tracing::Span::current();
    span.record("uid", request.uid.as_str());
    span.record("kind", request.kind.kind.as_str());
    span.record("namespace", request.namespace.as_deref().unwrap_or(""));
    let decision = review::decide_in_place(endpoint, policy, &mut request);
    state.record(endpoint, policy, &request, &decision);
    let body = review::respond(&request, &decision).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    response.extensions_mut().insert(decision.outcome);
    Ok(response)
}

/// The endpoint of an admission path and the policy name in it (`None`: the bare path).
fn route(path: &str) -> (Endpoint, Option<&str>) {
    let (endpoint, rest) = match path.strip_prefix(MUTATE_PATH) {
        Some(rest) => (Endpoint::Mutate, rest),
        None => (
            Endpoint::Validate,
            path.strip_prefix(VALIDATE_PATH).unwrap_or(path),
        ),
    };
    (endpoint, rest.strip_prefix('/'))
}

/// Around `/mutate…` and `/validate…`: finds the policy of the path in the current set
/// (a path no policy serves is a 404, not counted), then the request timeout, and the
/// request count and latency by policy and outcome (the handler or the error leaves the
/// outcome in the response).
pub(super) async fn observe(
    State(state): State<Arc<AppState>>,
    mut request: HttpRequest,
    next: Next,
) -> Response {
    // A wrong method gets its 405 and is not counted as an admission request.
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let start = Instant::now();
    let (endpoint, name) = route(request.uri().path());
    let policies = state.policies();
    let policy = match name {
        Some(name) => policies.get(name),
        None => policies.only(),
    };
    let Some(policy) = policy.cloned() else {
        let names: Vec<&str> = policies.names().collect();
        return ApiError::NoPolicy {
            path: request.uri().path().to_string(),
            policies: names.join(", "),
        }
        .into_response();
    };
    tracing::Span::current().record("policy", policy.name());
    let policy_name = policy.name().to_string();
    request.extensions_mut().insert(policy);
    let timeout = state.request_timeout;
    let response = match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(timeout).into_response(),
    };
    let outcome = response
        .extensions()
        .get::<Outcome>()
        .copied()
        .unwrap_or(Outcome::Error);
    state
        .metrics()
        .request(endpoint, &policy_name, outcome, start.elapsed().as_secs_f64());
    response
}

/// `GET /healthz`: the process is up.
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the policy and certificate are loaded and the server is not shutting down.
pub(super) async fn readyz(State(state): State<Arc<AppState>>) -> Result<&'static str, ApiError> {
    if state.is_ready() {
        Ok("ok")
    } else {
        Err(ApiError::NotReady)
    }
}

/// `GET /metrics`: Prometheus text (OpenMetrics).
pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let text = state
        .metrics()
        .encode()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

/// A known path with the wrong method.
pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

/// Any other path.
pub(super) async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/mutate"), (Endpoint::Mutate, None));
        assert_eq!(route("/mutate/team-a"), (Endpoint::Mutate, Some("team-a")));
        assert_eq!(route("/validate"), (Endpoint::Validate, None));
        assert_eq!(route("/validate/team-b"), (Endpoint::Validate, Some("team-b")));
    }
}
