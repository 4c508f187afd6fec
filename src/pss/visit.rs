//! What "every container" means, and the pieces every message is built from, defined once
//! so that the wording of the checks cannot drift apart (upstream `visitor.go`,
//! `helpers.go`).

pub(crate) use super::view::{ContainerView, PodView};

/// Calls `visitor` with every container of the pod, in upstream's visiting order:
/// `initContainers`, `containers`, then `ephemeralContainers` (upstream `visitContainers`).
#[inline]
pub(crate) fn visit_containers<'a>(spec: &PodView<'a>, mut visitor: impl FnMut(ContainerView<'a>)) {
    for c in &spec.containers {
        visitor(*c);
    }
}

/// Whether `pred` holds for any container, in visiting order, stopping at the first.
/// Checks use it as their fast path: an allowed pod is scanned once and nothing is built.
#[inline]
pub(crate) fn any_container<'a>(spec: &PodView<'a>, mut pred: impl FnMut(ContainerView<'a>) -> bool) -> bool {
    spec.containers.iter().any(|c| pred(*c))
}

/// Whether the pod declares itself a Windows pod (`spec.os.name: windows`).
pub(crate) fn is_windows(spec: &PodView<'_>) -> bool {
    spec.os_name == Some("windows")
}

/// Whether the pod runs in a user namespace (`spec.hostUsers: false`), for which some
/// checks relax from v1.35 (KEP-127).
pub(crate) fn relax_for_user_namespace(spec: &PodView<'_>) -> bool {
    spec.host_users == Some(false)
}

/// `"a", "b"`: each item in double quotes, joined with `, `; no escaping, as upstream.
pub(crate) fn join_quote<I>(items: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        out.push_str(item.as_ref());
        out.push('"');
    }
    out
}

/// The singular when `count` is 1, else the plural.
pub(crate) fn pluralize(singular: &'static str, plural: &'static str, count: usize) -> &'static str {
    if count == 1 { singular } else { plural }
}

/// `container "a"` / `containers "a", "b"`.
pub(crate) fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// Who set a bad value: `pod`, `container(s) "…"`, or both joined with ` and `.
pub(crate) fn setters(pod: bool, containers: &[&str]) -> String {
    let mut out = String::new();
    if pod {
        out.push_str("pod");
    }
    if !containers.is_empty() {
        if pod {
            out.push_str(" and ");
        }
        out.push_str(&containers_phrase(containers));
    }
    out
}

/// A string as Go's `%q` prints it: in double quotes, with `"` and `\` escaped and
/// control and other non-printing characters written as escapes.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if !go_printable(c) => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` beyond ASCII: control, separator and
/// format characters are not printable.
fn go_printable(c: char) -> bool {
    if c.is_ascii() {
        return true;
    }
    !(c.is_control()
        || (c.is_whitespace())
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visiting_order_is_init_regular_ephemeral() {
        let spec: k8s_openapi::api::core::v1::PodSpec = crate::value::from_value(crate::json!({
            "containers": [{"name": "c1"}, {"name": "c2"}],
            "initContainers": [{"name": "i1"}],
            "ephemeralContainers": [{"name": "e1"}],
        }))
        .unwrap();
        let mut names = Vec::new();
        visit_containers(&PodView::of(&spec), |c| names.push(c.name));
        assert_eq!(names, ["i1", "c1", "c2", "e1"]);
    }

    #[test]
    fn message_pieces() {
        assert_eq!(join_quote(["a", "b"]), r#""a", "b""#);
        assert_eq!(join_quote(Vec::<&str>::new()), "");
        assert_eq!(pluralize("volume", "volumes", 1), "volume");
        assert_eq!(pluralize("volume", "volumes", 0), "volumes");
        assert_eq!(setters(true, &["a", "b"]), r#"pod and containers "a", "b""#);
        assert_eq!(setters(false, &["a"]), r#"container "a""#);
        assert_eq!(setters(true, &[]), "pod");
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("unconfined"), r#""unconfined""#);
        assert_eq!(go_quote("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\x01""#);
        assert_eq!(go_quote("é\u{a0}"), r#""é\u00a0""#);
    }
}
