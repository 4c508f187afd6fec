//! Allowlist verdicts on what the job asked for, and the yield rules that keep the
//! result a pod the API server accepts and the kubelet starts.

use std::borrow::Cow;

use crate::value::Value;

use super::{
    Origin,
    fields::{Candidate, Candidates, IdList},
};
use crate::policy::{IdSet, ValidPolicy, allowlist};

/// Which allowlist a field is checked against.
pub(crate) fn list_for<'p>(
    policy: &'p ValidPolicy,
    field: &str,
) -> Option<(&'static str, Option<&'p IdSet>)> {
    let list = super::fields::lookup(field)?.ids?;
    let set = match list {
        IdList::Users => policy.allowed_users.as_ref(),
        IdList::Groups => policy.allowed_groups.as_ref(),
    };
    Some((list.key(), set))
}

/// Whether one requested ID is allowed by a list (absent list: any non-root ID).
pub(crate) fn id_allowed(list: Option<&IdSet>, id: &Value) -> bool {
    let Some(n) = id.as_i64() else { return false };
    match list {
        Some(set) => set.allows(n),
        None => allowlist::allowed_without_list(n),
    }
}

/// Describes a list for messages.
pub(crate) fn describe(name: &str, list: Option<&IdSet>) -> String {
    match list {
        Some(set) => format!("{name} {set}"),
        None => format!("{name} (not set: any non-root ID)"),
    }
}

/// A pair of values that cannot stand together in one container.
pub(crate) struct Conflict {
    /// The first field (`capabilities.add` for the capability list).
    pub a: &'static str,
    /// Whether a value of `a` takes part.
    pub a_bad: fn(&Value) -> bool,
    /// The second field.
    pub b: &'static str,
    /// Whether a value of `b` takes part.
    pub b_bad: fn(&Value) -> bool,
    /// What `b` becomes when it yields and would otherwise be inherited from the pod.
    pub b_neutral: Option<Value>,
    /// Why, for messages.
    pub why: &'static str,
}

fn is_true(v: &Value) -> bool {
    v == &Value::Bool(true)
}

fn is_false(v: &Value) -> bool {
    v == &Value::Bool(false)
}

fn is_root(v: &Value) -> bool {
    v.as_i64() == Some(0)
}

fn adds_sys_admin(v: &Value) -> bool {
    v.as_array().is_some_and(|caps| {
        caps.iter()
            .any(|c| matches!(c.as_str(), Some("SYS_ADMIN" | "CAP_SYS_ADMIN")))
    })
}

/// The API server rejects `allowPrivilegeEscalation: false` with `privileged: true` or
/// with `CAP_SYS_ADMIN` added; the kubelet refuses to start a container whose
/// `runAsNonRoot: true` meets `runAsUser: 0`.
pub(crate) fn conflicts() -> [Conflict; 3] {
    [
        Conflict {
            a: "privileged",
            a_bad: is_true,
            b: "allowPrivilegeEscalation",
            b_bad: is_false,
            b_neutral: None,
            why: "the API server rejects allowPrivilegeEscalation=false with privileged=true",
        },
        Conflict {
            a: "capabilities.add",
            a_bad: adds_sys_admin,
            b: "allowPrivilegeEscalation",
            b_bad: is_false,
            b_neutral: None,
            why: "the API server rejects allowPrivilegeEscalation=false with CAP_SYS_ADMIN",
        },
        Conflict {
            a: "runAsUser",
            a_bad: is_root,
            b: "runAsNonRoot",
            b_bad: is_true,
            b_neutral: Some(Value::Bool(false)),
            why: "the kubelet does not start a container with runAsNonRoot=true and runAsUser=0",
        },
    ]
}

/// An active conflict: both winners take part and not both are the job's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Active {
    /// Whether `a` yields (else `b`).
    pub loser_is_a: bool,
    /// The rank of the value that yields; the strongest loser is resolved first, so
    /// that no value yields to one that is about to yield itself.
    pub loser_rank: (u8, u8),
}

/// Whether a rule is active on a container's candidates, and who yields. At equal rank
/// (the same section) the second field yields. When both values are the job's own, the
/// API server judges the pod as the job built it: not active.
pub(crate) fn active(rule: &Conflict, a: &Candidates<'_>, b: &Candidates<'_>) -> Option<Active> {
    let (wa, wb) = (a.winner()?, b.winner()?);
    if !((rule.a_bad)(&wa.value) && (rule.b_bad)(&wb.value)) || (wa.is_job() && wb.is_job()) {
        return None;
    }
    let loser_is_a = wa.origin.rank() < wb.origin.rank();
    let loser_rank = if loser_is_a {
        wa.origin.rank()
    } else {
        wb.origin.rank()
    };
    Some(Active {
        loser_is_a,
        loser_rank,
    })
}

/// Removes the losing side's top candidate. When `b` yields and nothing of its own is
/// left, it takes its neutral value so that the pod-level value is not inherited.
pub(crate) fn yield_top(
    rule: &Conflict,
    a: &mut Candidates,
    b: &mut Candidates,
    loser_is_a: bool,
    against: Origin,
) {
    if loser_is_a {
        a.drop_winner();
        return;
    }
    b.drop_winner();
    if let Some(neutral) = &rule.b_neutral
        && b.winner().is_none_or(|w| (rule.b_bad)(&w.value))
    {
        b.0.retain(|c| !(rule.b_bad)(&c.value));
        b.insert(Candidate {
            origin: against,
            value: Cow::Owned(neutral.clone()),
        });
    }
}
