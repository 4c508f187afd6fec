//! ciguard: security-context policy for CI workloads on Kubernetes.
//!
//! CI systems run every job as a pod. ciguard gives those pods the security context an
//! instance owner decides: defaults a job may override, values no job can override,
//! per-role contexts (build, helper, service, init), allowlists for the user and group a
//! job asks for, and a final check against the Pod Security Standards, with the API
//! server's own messages.
//!
//! ```
//! use ciguard::{policy::ValidPolicy, merge::render};
//!
//! let policy = ValidPolicy::builtin();
//! let pod = ciguard::json!({
//!     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job"},
//!     "spec": {"containers": [{"name": "build", "image": "alpine"}]}
//! });
//! let rendered = render(&policy, &pod).unwrap();
//! assert_eq!(rendered.object["spec"]["securityContext"]["runAsNonRoot"], true);
//! assert!(rendered.denial.is_none());
//! ```

#[cfg(feature = "server")]
pub mod admission;
pub mod audit;
pub mod error;
pub mod import;
pub mod lint;
pub mod merge;
pub mod policy;
pub mod pss;
pub mod source;
pub mod stream;
pub mod value;
pub mod webhook_config;
pub mod workload;

pub use error::{Error, Location};
pub use policy::{Policy, ValidPolicy};
