//! The admission webhook (`ciguard serve`): mutating and validating `admission.k8s.io/v1`
//! AdmissionReview over HTTPS, with policy and certificate hot reload, Prometheus metrics
//! and a JSONL audit log.
//!
//! [`router`] is the whole HTTP surface, so it can be tested without a socket; [`Server`]
//! adds TLS, reloads and graceful shutdown.
//!
//! Each policy of the set is served at `/mutate/<name>` and `/validate/<name>`; a set of
//! exactly one is served at `/mutate` and `/validate` too.
//!
//! ```
//! use std::sync::Arc;
//! use ciguard::admission::{router, AppState, Audit};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let state = Arc::new(AppState::new(ciguard::ValidPolicy::builtin(), Audit::off()));
//! let request = axum::http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap();
//! let response = router(state).oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # });
//! ```

mod audit;
mod error;
mod handlers;
mod metrics;
mod object;
mod reload;
mod review;
mod server;
mod tls;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware,
    routing::{get, post},
};
use tower_http::trace::TraceLayer;

pub use self::{
    audit::{Audit, AuditSink},
    error::{ApiError, ServeError},
    metrics::{Endpoint, Metrics, Outcome, Target},
    review::{Decision, RawObject, Request, ReviewError, decide, decide_in_place, parse, respond},
    server::{Config, Server, Tls},
    tls::{TlsError, server_config},
};
use crate::policy::{ValidPolicy, set::PolicySet};

/// `POST`: the mutating webhook (with exactly one policy); `/mutate/<name>` for any.
pub const MUTATE_PATH: &str = "/mutate";
/// `POST`: the validating webhook (with exactly one policy); `/validate/<name>` for any.
pub const VALIDATE_PATH: &str = "/validate";
/// `GET`: liveness.
pub const HEALTHZ_PATH: &str = "/healthz";
/// `GET`: readiness.
pub const READYZ_PATH: &str = "/readyz";
/// `GET`: Prometheus metrics.
pub const METRICS_PATH: &str = "/metrics";
/// The largest request body accepted (3 MiB, the API server's own limit); larger is 413.
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;
/// The default request timeout (the webhook configurations give the API server 5 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

/// What the handlers share: the current policies, metrics, the audit log, readiness.
#[derive(Debug)]
pub struct AppState {
    policies: ArcSwap<PolicySet>,
    metrics: Metrics,
    audit: Audit,
    ready: AtomicBool,
    request_timeout: Duration,
}

impl AppState {
    /// State serving `policy`; not ready until [`AppState::set_ready`].
    pub fn new(policy: ValidPolicy, audit: Audit) -> Self {
        Self::with_policies(PolicySet::single(policy), audit)
    }

    /// State serving a set of policies; not ready until [`AppState::set_ready`].
    pub fn with_policies(policies: PolicySet, audit: Audit) -> Self {
        AppState {
            policies: ArcSwap::from_pointee(policies),
            metrics: Metrics::new(),
            audit,
            ready: AtomicBool::new(false),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Sets the request timeout (reading the body included).
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The policies in force.
    pub fn policies(&self) -> Arc<PolicySet> {
        self.policies.load_full()
    }

    /// Replaces the policies, as one; requests in flight finish with the old ones.
    pub fn set_policies(&self, policies: PolicySet) {
        self.policies.store(Arc::new(policies));
    }

    /// Replaces the policies with this one.
    pub fn set_policy(&self, policy: ValidPolicy) {
        self.set_policies(PolicySet::single(policy));
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The audit log.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Sets readiness.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Counts the decision's warnings and denial reasons, writes its audit line, logs it.
    fn record(&self, endpoint: Endpoint, policy: &ValidPolicy, request: &Request, decision: &Decision) {
        for code in &decision.warning_codes {
            self.metrics.warning(policy.name(), code);
        }
        for reason in &decision.denial_reasons {
            self.metrics.denial(policy.name(), reason);
        }
        if self.audit.is_on() {
            let record = audit::Record::new(endpoint, policy.name(), request, decision);
            let mut line = Vec::with_capacity(1024);
            match record.write(&mut line) {
                Ok(()) => {
                    if !self.audit.write(line) {
                        self.metrics.audit_dropped();
                    }
                }
                Err(e) => tracing::error!(error = %e, "failed to encode an audit line"),
            }
        }
        match decision.outcome {
            Outcome::Denied | Outcome::Invalid => tracing::info!(
                endpoint = endpoint.as_str(),
                policy = policy.name(),
                outcome = decision.outcome.as_str(),
                message = decision.message.as_deref().unwrap_or(""),
                "not allowed"
            ),
            outcome => tracing::debug!(
                endpoint = endpoint.as_str(),
                policy = policy.name(),
                outcome = outcome.as_str(),
                "allowed"
            ),
        }
    }
}

/// The webhook's routes: `POST /mutate/<policy>`, `POST /validate/<policy>` (and `/mutate`,
/// `/validate` with one policy), `GET /healthz`, `/readyz`, `/metrics`; bodies over
/// [`BODY_LIMIT`] get 413, anything else unreadable 400.
pub fn router(state: Arc<AppState>) -> Router {
    let admission = Router::new()
        .route(MUTATE_PATH, post(handlers::mutate))
        .route(&format!("{MUTATE_PATH}/{{policy}}"), post(handlers::mutate))
        .route(VALIDATE_PATH, post(handlers::validate))
        .route(&format!("{VALIDATE_PATH}/{{policy}}"), post(handlers::validate))
        .route_layer(middleware::from_fn_with_state(state.clone(), handlers::observe));
    // Failures are logged where they happen (ApiError); a 503 from /readyz while
    // draining is not one.
    let trace =
        TraceLayer::new_for_http()
            .on_failure(())
            .make_span_with(|request: &axum::http::Request<_>| {
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    policy = tracing::field::Empty,
                    uid = tracing::field::Empty,
                    kind = tracing::field::Empty,
                    namespace = tracing::field::Empty,
                )
            });
    Router::new()
        .merge(admission)
        .route(HEALTHZ_PATH, get(handlers::healthz))
        .route(READYZ_PATH, get(handlers::readyz))
        .route(METRICS_PATH, get(handlers::metrics))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(trace)
        .with_state(state)
}
