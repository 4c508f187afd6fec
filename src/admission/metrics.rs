//! Prometheus metrics, every name prefixed `ciguard_`, served as text on `/metrics`.
//!
//! | metric | labels |
//! |---|---|
//! | `ciguard_admission_requests_total` | `policy` (its name), `endpoint` (mutate, validate), `outcome` |
//! | `ciguard_admission_request_duration_seconds` | `policy`, `endpoint` |
//! | `ciguard_reloads_total` | `target` (policy, certificate) |
//! | `ciguard_reload_errors_total` | `target` |
//! | `ciguard_warnings_total` | `policy`, `code` (a warning code, or `pod-security` for workloads) |
//! | `ciguard_denials_total` | `policy`, `reason` (`policy`, or the upstream PodSecurity check ID) |
//! | `ciguard_audit_dropped_total` | — |

use std::fmt::{self, Write};

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

/// The admission endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /mutate`
    Mutate,
    /// `POST /validate`
    Validate,
}

impl Endpoint {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Mutate => "mutate",
            Endpoint::Validate => "validate",
        }
    }
}

/// What became of an admission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Allowed unchanged (possibly with warnings).
    Allowed,
    /// Allowed with a patch.
    Patched,
    /// Denied.
    Denied,
    /// Not for ciguard (another resource or operation): allowed untouched.
    Skipped,
    /// Not a readable AdmissionReview, too large, or an object ciguard cannot read.
    Invalid,
    /// The request timed out.
    Timeout,
    /// An error on ciguard's side.
    Error,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Patched => "patched",
            Outcome::Denied => "denied",
            Outcome::Skipped => "skipped",
            Outcome::Invalid => "invalid",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
        }
    }
}

/// What is reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The policy file.
    Policy,
    /// The certificate and key.
    Certificate,
}

impl Target {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Policy => "policy",
            Target::Certificate => "certificate",
        }
    }
}

macro_rules! label_value {
    ($($t:ty),*) => {$(
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    )*};
}
label_value!(Endpoint, Outcome, Target);

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    policy: String,
    endpoint: Endpoint,
    outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabels {
    policy: String,
    endpoint: Endpoint,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TargetLabels {
    target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CodeLabels {
    policy: String,
    code: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    policy: String,
    reason: &'static str,
}

type HistogramFamily = Family<EndpointLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs … ~1.6 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The webhook's metrics, one field per metric.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily,
    reloads: Family<TargetLabels, Counter>,
    reload_errors: Family<TargetLabels, Counter>,
    warnings: Family<CodeLabels, Counter>,
    denials: Family<ReasonLabels, Counter>,
    audit_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ciguard");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = HistogramFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        let reloads = Family::<TargetLabels, Counter>::default();
        let reload_errors = Family::<TargetLabels, Counter>::default();
        let warnings = Family::<CodeLabels, Counter>::default();
        let denials = Family::<ReasonLabels, Counter>::default();
        let audit_dropped = Counter::default();
        registry.register(
            "admission_requests",
            "Admission requests by endpoint and outcome",
            requests.clone(),
        );
        registry.register_with_unit(
            "admission_request_duration",
            "Time to answer an admission request, reading the body included",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "reloads",
            "Successful reloads of the policy or certificate",
            reloads.clone(),
        );
        registry.register(
            "reload_errors",
            "Failed reloads of the policy or certificate (the last good one keeps serving)",
            reload_errors.clone(),
        );
        registry.register("warnings", "Warnings returned, by code", warnings.clone());
        registry.register("denials", "Denials, by reason", denials.clone());
        registry.register(
            "audit_dropped",
            "Audit lines dropped because the audit writer could not keep up",
            audit_dropped.clone(),
        );
        for target in [Target::Policy, Target::Certificate] {
            reloads.get_or_create(&TargetLabels { target }).get();
            reload_errors.get_or_create(&TargetLabels { target }).get();
        }
        Metrics {
            registry,
            requests,
            duration,
            reloads,
            reload_errors,
            warnings,
            denials,
            audit_dropped,
        }
    }

    /// Counts one admission request to a policy, and its latency.
    pub fn request(&self, endpoint: Endpoint, policy: &str, outcome: Outcome, seconds: f64) {
        let policy = policy.to_string();
        self.duration
            .get_or_create(&EndpointLabels {
                policy: policy.clone(),
                endpoint,
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                policy,
                endpoint,
                outcome,
            })
            .inc();
    }

    /// Counts a reload, or a failed one.
    pub fn reload(&self, target: Target, ok: bool) {
        let family = if ok { &self.reloads } else { &self.reload_errors };
        family.get_or_create(&TargetLabels { target }).inc();
    }

    /// Counts a warning of a policy.
    pub fn warning(&self, policy: &str, code: &'static str) {
        let policy = policy.to_string();
        self.warnings.get_or_create(&CodeLabels { policy, code }).inc();
    }

    /// Counts a denial reason of a policy.
    pub fn denial(&self, policy: &str, reason: &'static str) {
        let policy = policy.to_string();
        self.denials.get_or_create(&ReasonLabels { policy, reason }).inc();
    }

    /// Counts a dropped audit line.
    pub fn audit_dropped(&self) {
        self.audit_dropped.inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_counted() {
        let m = Metrics::new();
        m.request(Endpoint::Mutate, "team-a", Outcome::Patched, 0.001);
        m.reload(Target::Policy, false);
        m.warning("team-a", "disallowed-id");
        m.denial("team-b", "runAsNonRoot");
        let text = m.encode().unwrap();
        assert!(text.contains(
            r#"ciguard_admission_requests_total{policy="team-a",endpoint="mutate",outcome="patched"} 1"#
        ));
        assert!(text.contains(r#"ciguard_reload_errors_total{target="policy"} 1"#));
        assert!(text.contains(r#"ciguard_reloads_total{target="certificate"} 0"#));
        assert!(text.contains(r#"ciguard_warnings_total{policy="team-a",code="disallowed-id"} 1"#));
        assert!(text.contains(r#"ciguard_denials_total{policy="team-b",reason="runAsNonRoot"} 1"#));
        assert!(text.contains("ciguard_admission_request_duration_seconds_bucket"));
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            assert!(line.starts_with("ciguard_"), "{line}");
        }
    }
}
