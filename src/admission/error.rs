//! The webhook's errors. [`ApiError`] is the one HTTP error type, and this file is the
//! only place that picks an HTTP status code (or the HTTP-style `status.code` of an
//! admission response). [`ServeError`] is what can stop `ciguard serve` from starting.

use std::{net::SocketAddr, path::PathBuf};

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use kube_core::Status;

use super::metrics::Outcome;
use crate::policy::PolicyErrors;

/// The HTTP-style `status.code` and `status.reason` of an admission response that does
/// not allow: 403 Forbidden for a denial (as PodSecurity admission answers), 400
/// BadRequest for an object ciguard cannot read.
pub(crate) fn admission_status(outcome: Outcome) -> (u16, &'static str) {
    match outcome {
        Outcome::Denied => (StatusCode::FORBIDDEN.as_u16(), "Forbidden"),
        _ => (StatusCode::BAD_REQUEST.as_u16(), "BadRequest"),
    }
}

/// An error answered over HTTP instead of an AdmissionReview.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not an `admission.k8s.io/v1` AdmissionReview (HTTP 400).
    #[error(transparent)]
    BadRequest(#[from] super::review::ReviewError),
    /// No policy is served at this admission path (HTTP 404).
    #[error(
        "no policy is served at {path}; this server has the policies {policies}, each at /mutate/<name> and /validate/<name> (and /mutate, /validate when it has exactly one)"
    )]
    NoPolicy {
        /// The path.
        path: String,
        /// The names of the policies, comma-separated.
        policies: String,
    },
    /// No such route (HTTP 404).
    #[error("no route for {0}; ciguard serves POST /mutate, POST /validate, GET /healthz, /readyz, /metrics")]
    NotFound(String),
    /// The route exists, the method does not (HTTP 405).
    #[error(
        "method {method} not allowed for {path}; ciguard serves POST /mutate, POST /validate, GET /healthz, /readyz, /metrics"
    )]
    MethodNotAllowed {
        /// The method sent.
        method: String,
        /// The path.
        path: String,
    },
    /// The body is larger than the limit (HTTP 413).
    #[error("request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read (HTTP 400).
    #[error("failed to read the request body")]
    Body(#[source] axum::Error),
    /// The request (reading its body included) took longer than the request timeout
    /// (HTTP 408).
    #[error("request timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The server is not ready or shutting down (HTTP 503).
    #[error("not ready")]
    NotReady,
    /// Something failed on ciguard's side (HTTP 500). The detail is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status and the Kubernetes `Status.reason`.
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) | ApiError::Body(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ApiError::NotFound(_) | ApiError::NoPolicy { .. } => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge"),
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "Timeout"),
            ApiError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }

    /// How the request is counted in `ciguard_admission_requests_total`.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            ApiError::BadRequest(_)
            | ApiError::Body(_)
            | ApiError::TooLarge { .. }
            | ApiError::NotFound(_)
            | ApiError::NoPolicy { .. }
            | ApiError::MethodNotAllowed { .. } => Outcome::Invalid,
            ApiError::Timeout(_) => Outcome::Timeout,
            ApiError::NotReady | ApiError::Internal(_) => Outcome::Error,
        }
    }

    /// The message sent to the client: the error and its causes.
    fn message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            message.push_str(": ");
            message.push_str(&e.to_string());
            source = e.source();
        }
        message
    }
}

impl IntoResponse for ApiError {
    /// A Kubernetes `Status` object as JSON, with its `kind` and `apiVersion`.
    fn into_response(self) -> Response {
        let (status, reason) = self.status();
        let message = self.message();
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            // Expected during start and drain; the probe's own 503 says enough.
            ApiError::NotReady => tracing::debug!("not ready"),
            _ => tracing::info!(status = status.as_u16(), %message, "request refused"),
        }
        let body = TypedStatus {
            kind: "Status",
            api_version: "v1",
            status: Status::failure(&message, reason).with_code(status.as_u16()),
        };
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(self.outcome());
        response
    }
}

/// A `meta/v1` Status as the API server writes it: kube-core's [`Status`] has no
/// `kind` and `apiVersion`.
#[derive(serde::Serialize)]
struct TypedStatus {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    #[serde(flatten)]
    status: Status,
}

/// Why `ciguard serve` could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The policy file could not be read or is invalid.
    #[error("failed to load the policy from '{path}'")]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// Every error, with file:line:col.
        #[source]
        source: PolicyErrors,
    },
    /// The policies could not be read, are invalid, or have the same name.
    #[error(transparent)]
    Policies(crate::policy::set::SetErrors),
    /// The certificate or key could not be read or do not form a usable pair.
    #[error("failed to load the TLS certificate '{cert}' and key '{key}'")]
    Tls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What is wrong.
        #[source]
        source: super::tls::TlsError,
    },
    /// The policy or certificate directories could not be watched.
    #[error("failed to watch '{path}' for changes")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// The watcher's error.
        #[source]
        source: notify::Error,
    },
    /// The audit log could not be opened.
    #[error("failed to open the audit log '{path}'")]
    Audit {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server failed (e.g. the address is in use).
    #[error("failed to serve on {addr}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
