//! The merge engine's hook for `spec.exceptions`: for a container whose role and image
//! an exception matches, the job's own request for a field stands above enforced values
//! and allowlists when it equals what the exception allows. The grant is a candidate of
//! its own origin ([`Origin::Exception`]), ranked above every layer, so provenance and
//! `--explain` name the exception, and the validity rules make lower values yield to it.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::{
    Origin,
    fields::{Candidate, Candidates},
};
use crate::policy::exception::ValidException;

/// Adds the grant of the first applicable exception that allows the job's container-level
/// request for `field` (`capabilities.add` included). A request the policy already gives
/// needs no grant: provenance keeps naming the policy layer.
pub(super) fn grant<'a>(
    exceptions: &[&ValidException],
    job: &'a Map<String, Value>,
    field: &str,
    candidates: &mut Candidates<'a>,
) {
    let requested = if field == "capabilities.add" {
        job.get("capabilities").and_then(|c| c.get("add"))
    } else {
        job.get(field)
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
