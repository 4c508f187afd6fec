//! `spec.match`: label selectors checked as the API server checks those of a webhook
//! configuration, so a mistake shows at load time with its position, not at install time.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::Match;

/// The longest label name (the part after an optional `prefix/`) and label value.
const MAX_NAME: usize = 63;
/// The longest DNS-1123 subdomain.
const MAX_SUBDOMAIN: usize = 253;

/// One problem with a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SelectorError {
    /// The JSON pointer below the selector.
    pub(crate) pointer: String,
    /// Whether the problem is the value at `pointer` (else its key).
    pub(crate) at_value: bool,
    /// What is wrong and what was expected.
    pub(crate) message: String,
}

/// What is wrong with a selector, in document order. `what` names the selector in
/// messages (`match.namespaceSelector`).
pub(crate) fn check(what: &str, selector: &LabelSelector) -> Vec<SelectorError> {
    let mut out = Vec::new();
    let mut push = |pointer: String, at_value: bool, message: String| {
        out.push(SelectorError {
            pointer,
            at_value,
            message,
        })
    };
    for (key, value) in selector.match_labels.iter().flatten() {
        let ptr = format!("/matchLabels/{}", crate::source::escape(key));
        if let Err(e) = qualified_name(key) {
            push(
                ptr.clone(),
                false,
                format!("{what}.matchLabels key \"{key}\": {e}"),
            );
        }
        if let Err(e) = label_value(value) {
            push(
                ptr,
                true,
                format!("{what}.matchLabels[\"{key}\"] value \"{value}\": {e}"),
            );
        }
    }
    for (i, r) in selector.match_expressions.iter().flatten().enumerate() {
        let at = format!("{what}.matchExpressions[{i}]");
        let ptr = format!("/matchExpressions/{i}");
        if let Err(e) = qualified_name(&r.key) {
            push(format!("{ptr}/key"), true, format!("{at}.key \"{}\": {e}", r.key));
        }
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => push(
                ptr.clone(),
                false,
                format!("{at}: operator {} needs at least one value", r.operator),
            ),
            "Exists" | "DoesNotExist" if !values.is_empty() => push(
                format!("{ptr}/values"),
                false,
                format!("{at}: operator {} takes no values", r.operator),
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => push(
                format!("{ptr}/operator"),
                true,
                format!("{at}.operator \"{other}\": expected one of In, NotIn, Exists, DoesNotExist"),
            ),
        }
        for (j, v) in values.iter().enumerate() {
            if let Err(e) = label_value(v) {
                push(
                    format!("{ptr}/values/{j}"),
                    true,
                    format!("{at}.values[{j}] \"{v}\": {e}"),
                );
            }
        }
    }
    out
}

/// A label key: `name` or `prefix/name`, the prefix a DNS subdomain.
fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns_subdomain(p)
    {
        return Err(format!(
            "prefix \"{p}\" is not a DNS subdomain (lowercase letters, digits, '-' and '.', at most {MAX_SUBDOMAIN} characters)"
        ));
    }
    if name.is_empty() {
        return Err("the name part is empty".into());
    }
    label_value(name)
}

/// A label value: empty, or at most 63 letters, digits, `-`, `_`, `.`, beginning and
/// ending with a letter or digit.
fn label_value(v: &str) -> Result<(), String> {
    let ok = v.is_empty()
        || (v.len() <= MAX_NAME
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && v.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected at most {MAX_NAME} letters, digits, '-', '_' or '.', beginning and ending with a letter or digit"
        ))
    }
}

/// A DNS-1123 subdomain: dot-separated labels of lowercase letters, digits and `-`, each
/// beginning and ending with a letter or digit, at most 253 characters in all.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SUBDOMAIN
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_NAME
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl Match {
    /// The match with every selector in one canonical form, so two that select the same
    /// way by the same words compare equal: an empty selector is an absent one (both
    /// select everything), expressions and their values are sorted.
    pub fn normalized(&self) -> Match {
        Match {
            namespace_selector: self.namespace_selector.as_ref().and_then(normalize),
            object_selector: self.object_selector.as_ref().and_then(normalize),
        }
    }
}

fn normalize(s: &LabelSelector) -> Option<LabelSelector> {
    let labels: BTreeMap<String, String> = s.match_labels.clone().unwrap_or_default();
    let mut expressions: Vec<LabelSelectorRequirement> = s.match_expressions.clone().unwrap_or_default();
    for e in &mut expressions {
        if let Some(v) = &mut e.values {
            v.sort();
            v.dedup();
        }
        if e.values.as_ref().is_some_and(Vec::is_empty) {
            e.values = None;
        }
    }
    expressions.sort_by(|a, b| (&a.key, &a.operator, &a.values).cmp(&(&b.key, &b.operator, &b.values)));
    expressions.dedup();
    if labels.is_empty() && expressions.is_empty() {
        return None;
    }
    Some(LabelSelector {
        match_labels: (!labels.is_empty()).then_some(labels),
        match_expressions: (!expressions.is_empty()).then_some(expressions),
    })
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn selector(yaml: &str) -> LabelSelector {
        crate::source::from_str(yaml, "s.yaml").unwrap()
    }

    #[rstest]
    #[case::labels_ok("matchLabels: {ciguard.io/team: a, tier: ci-1}", &[])]
    #[case::bad_key("matchLabels: {\"Bad Key\": a}", &["/matchLabels/Bad Key"])]
    #[case::bad_prefix("matchLabels: {\"Ciguard.io/team\": a}", &["/matchLabels/Ciguard.io~1team"])]
    #[case::bad_value("matchLabels: {team: \"-a\"}", &["/matchLabels/team"])]
    #[case::in_without_values("matchExpressions: [{key: team, operator: In}]", &["/matchExpressions/0"])]
    #[case::exists_with_values(
        "matchExpressions: [{key: team, operator: Exists, values: [a]}]",
        &["/matchExpressions/0/values"]
    )]
    #[case::bad_operator(
        "matchExpressions: [{key: team, operator: Equals, values: [a]}]",
        &["/matchExpressions/0/operator"]
    )]
    #[case::bad_expression_value(
        "matchExpressions: [{key: team, operator: NotIn, values: [ok, \"not ok\"]}]",
        &["/matchExpressions/0/values/1"]
    )]
    fn selectors(#[case] yaml: &str, #[case] pointers: &[&str]) {
        let found: Vec<String> = check("match.objectSelector", &selector(yaml))
            .into_iter()
            .map(|e| e.pointer)
            .collect();
        assert_eq!(found, pointers);
    }

    #[test]
    fn messages_name_the_selector_and_what_is_expected() {
        let errors = check(
            "match.namespaceSelector",
            &selector("matchExpressions: [{key: team, operator: Equals, values: [a]}]"),
        );
        assert_eq!(
            errors[0].message,
            "match.namespaceSelector.matchExpressions[0].operator \"Equals\": expected one of In, NotIn, Exists, DoesNotExist"
        );
    }

    #[test]
    fn normal_form() {
        let a = Match {
            namespace_selector: Some(selector(
                "matchExpressions: [{key: b, operator: In, values: [y, x]}, {key: a, operator: Exists, values: []}]",
            )),
            object_selector: Some(selector("{}")),
        };
        let b = Match {
            namespace_selector: Some(selector(
                "matchExpressions: [{key: a, operator: Exists}, {key: b, operator: In, values: [x, y]}]",
            )),
            object_selector: None,
        };
        assert_eq!(a.normalized(), b.normalized());
        assert_eq!(Match::default().normalized(), b.normalized().clone_without_ns());
    }

    impl Match {
        fn clone_without_ns(&self) -> Match {
            Match {
                namespace_selector: None,
                object_selector: self.object_selector.clone(),
            }
        }
    }

    #[rstest]
    #[case("team-a", true)]
    #[case("a.b-c.d", true)]
    #[case("Team", false)]
    #[case("-a", false)]
    #[case("a..b", false)]
    #[case("", false)]
    fn dns_subdomains(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(is_dns_subdomain(s), ok);
    }
}
