//! The merge engine's hook for `spec.exceptions`: for a container whose role and image
//! an exception matches, the job's own request for a field stands above enforced values
//! and allowlists when it equals what the exception allows. The grant is a candidate of
//! its own origin ([`Origin::Exception`]), ranked above every layer, so provenance and
//! `--explain` name the exception, and the validity rules make lower values yield to it.

use std::borrow::Cow;

use crate::value::{Map, Value};

use super::{
    Origin,
    fields::{self, Candidate, Candidates},
};
use crate::policy::{Role, exception::ValidException};

/// Whether a container of `role` inherits the job's pod-level `field` (the helper never
/// inherits the job's user and group).
fn inherits(role: Role, field: &str) -> bool {
    fields::is_shared(field) && !(role == Role::Helper && fields::is_job_identity(field))
}

/// Adds the grant of the first applicable exception that allows the job's request for
/// `field` (`capabilities.add` included): the container's own value, or, for a field the
/// pod level shares, the job's pod-level value that the container would inherit (Woodpecker
/// puts a step's user there). The grant is written on the container; the pod-level request
/// itself meets the pod-level layers as usual. A request the policy already gives needs no
/// grant: provenance keeps naming the policy layer.
pub(super) fn grant<'a>(
    exceptions: &[&ValidException],
    job: &'a Map<String, Value>,
    job_pod: &'a Map<String, Value>,
    role: Role,
    field: &str,
    candidates: &mut Candidates<'a>,
) {
    if exceptions.is_empty() {
        return;
    }
    let requested = if field == "capabilities.add" {
        job.get("capabilities").and_then(|c| c.get("add"))
    } else {
        job.get(field)
            .or_else(|| inherits(role, field).then(|| job_pod.get(field)).flatten())
    };
    let Some(requested) = requested.filter(|v| !v.is_null()) else {
        return;
    };
    if candidates
        .winner()
        .is_some_and(|w| !w.is_job() && *w.value == *requested)
    {
        return;
    }
    if let Some(x) = exceptions.iter().find(|x| x.allows(field, requested)) {
        candidates.insert(Candidate {
            origin: Origin::Exception(x.name),
            value: Cow::Borrowed(requested),
        });
    }
}
