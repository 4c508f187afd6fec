//! Reading YAML and JSON text into [`Value`](crate::value::Value)s, with positions.
//!
//! Manifests are read with YAML 1.2 core-schema booleans (`yes`, `on`, `y` stay strings),
//! and key order is kept, so that a rendered document differs from its input only where
//! the policy changed it. JSON input goes through `serde_json` directly.
//!
//! [`LocationIndex`] maps a JSON-pointer-like path (`/spec/allowedUsers/1`) to the
//! line and column of the key or value in the YAML text, for errors found after
//! deserialization.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

use crate::error::Location;

mod fast;

/// The parser options used for every YAML input.
///
/// The budgets are sized for real input: a stream of any number of documents and lists
/// of thousands of objects, as `kubectl get -o yaml` writes them (every node costs at
/// least one byte of text, so the node and event budgets grow with the text; without
/// aliases a document costs no more to read than its size). Alias expansion stays
/// bounded (billion laughs is refused), and so does nesting ([`MAX_DEPTH`]).
pub fn yaml_options_for(text: &str) -> serde_saphyr::Options {
    let size = text.len();
    serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_documents: size.max(1_024),
            max_nodes: size.saturating_add(1).max(250_000),
            max_events: size.saturating_mul(3).max(1_000_000),
            max_depth: MAX_DEPTH,
        },
    }
}

/// The deepest nesting of mappings and sequences accepted in YAML: deep enough for real
/// manifests (a CRD's schema included), shallow enough that reading the deepest accepted
/// document fits a 2 MiB thread stack even in a debug build (JSON: `serde_json`'s own
/// limit, 128, with smaller frames).
pub const MAX_DEPTH: usize = 64;

/// The parser options for YAML input of unknown size (the default budgets).
pub fn yaml_options() -> serde_saphyr::Options {
    yaml_options_for("")
}

/// A syntax or type error in YAML or JSON text.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct SyntaxError {
    /// Where the error is.
    pub location: Location,
    /// What was wrong and what was expected.
    pub message: String,
}

/// The text without a leading UTF-8 byte-order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Whether text is JSON rather than YAML (its first significant character opens a JSON
/// object or array).
pub fn looks_like_json(text: &str) -> bool {
    matches!(strip_bom(text).trim_start().as_bytes().first(), Some(b'{' | b'['))
}

/// Whether text that opens like JSON opens like flow-style YAML instead: a mapping whose
/// first key is not quoted (`{apiVersion: v1, …}`), which JSON never reads.
pub(crate) fn opens_like_flow_yaml(text: &str) -> bool {
    let t = strip_bom(text).trim_start();
    t.strip_prefix('{')
        .map(str::trim_start)
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with(['"', '}']))
}

/// Of a JSON and a YAML error for the same text, the one that read further.
fn further(json: SyntaxError, yaml: SyntaxError) -> SyntaxError {
    let at = |e: &SyntaxError| (e.location.line, e.location.col);
    if at(&yaml) > at(&json) { yaml } else { json }
}

/// Deserializes one document of YAML or JSON text into `T`. Flow-style YAML that opens
/// like JSON (`{apiVersion: v1, …}`) is read as YAML.
pub fn from_str<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, SyntaxError> {
    let text = strip_bom(text);
    if looks_like_json(text) && !opens_like_flow_yaml(text) {
        serde_json::from_str(text).map_err(|e| json_error(&e, file))
    } else {
        serde_saphyr::from_str_with_options(text, yaml_options_for(text)).map_err(|e| yaml_error(&e, file))
    }
}

/// Deserializes every document of a (multi-document) YAML stream, or of JSON text (one
/// value, or several one after another, as kubectl reads them). Text that holds JSON
/// documents separated by `---` (or JSON, then YAML) is read as a YAML stream, as kubectl
/// reads it; so is flow-style YAML that opens like JSON. Empty and `null` documents are
/// skipped; a leading byte-order mark is ignored.
pub fn documents(text: &str, file: &str) -> Result<Vec<crate::value::Value>, SyntaxError> {
    let text = strip_bom(text);
    let yaml = || match fast::documents(text) {
        Some(docs) => Ok(docs),
        None => yaml_documents_saphyr(text, file),
    };
    if !looks_like_json(text) || opens_like_flow_yaml(text) {
        return yaml();
    }
    let mut docs = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<crate::value::Value>() {
        match value {
            Ok(v) if v.is_null() => {}
            Ok(v) => docs.push(v),
            // JSON that is broken inside its first value is reported as JSON; after a whole
            // value, the rest may be `---` and more documents: a YAML stream.
            Err(e) if docs.is_empty() || !(e.is_syntax() || e.is_eof()) => return Err(json_error(&e, file)),
            Err(e) => return yaml().map_err(|y| further(json_error(&e, file), y)),
        }
    }
    Ok(docs)
}

/// The documents of a YAML stream read by serde-saphyr alone (empty and `null` documents
/// skipped). [`documents`] reads most YAML through a faster path that gives the same
/// values and falls back to this; this is here to compare the two (tests/yaml_fast.rs).
pub fn yaml_documents_saphyr(text: &str, file: &str) -> Result<Vec<crate::value::Value>, SyntaxError> {
    let text = strip_bom(text);
    let docs: Vec<Option<crate::value::Value>> =
        serde_saphyr::from_multiple_with_options(text, yaml_options_for(text))
            .map_err(|e| yaml_error(&e, file))?;
    Ok(docs.into_iter().flatten().filter(|d| !d.is_null()).collect())
}

/// The documents of a YAML stream read by the fast path alone (see `src/source/fast.rs`),
/// or `None` where the text is outside what it reads with certainty and [`documents`]
/// falls back to serde-saphyr. Here to compare the two paths (tests/yaml_fast.rs).
pub fn yaml_documents_fast(text: &str) -> Option<Vec<crate::value::Value>> {
    fast::documents(strip_bom(text))
}

/// Converts a `serde_json` error into a [`SyntaxError`].
pub fn json_error(e: &serde_json::Error, file: &str) -> SyntaxError {
    let text = e.to_string();
    // serde_json appends " at line L column C"; the location carries that.
    let message = text.split(" at line ").next().unwrap_or(&text).to_string();
    SyntaxError {
        location: Location {
            file: file.to_string(),
            line: e.line() as u64,
            col: e.column() as u64,
        },
        message,
    }
}

/// Converts a `serde-saphyr` error into a [`SyntaxError`], without its source snippet.
pub fn yaml_error(e: &serde_saphyr::Error, file: &str) -> SyntaxError {
    let plain = e.without_snippet();
    let (line, col) = plain.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
    let mut message = plain.to_string();
    // The plain message starts with "error: line L column C: "; keep what follows.
    if let Some(rest) = message.strip_prefix("error: ")
        && let Some(idx) = rest.find(": ")
        && rest.starts_with("line ")
    {
        message = rest[idx + 2..].to_string();
    }
    // The location is in front already; drop a trailing " at line L, column C".
    if let Some(idx) = message.rfind(" at line ")
        && message[idx + 9..]
            .split(", column ")
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        message.truncate(idx);
    }
    if let Some(breach) = message.strip_prefix("budget breached: ") {
        message = budget_message(breach);
    }
    SyntaxError {
        location: Location {
            file: file.to_string(),
            line,
            col,
        },
        message,
    }
}

/// A parser budget breach (`Depth { depth: 129 }`) in words.
fn budget_message(breach: &str) -> String {
    let name = breach.split([' ', '{']).next().unwrap_or(breach);
    let why = match name {
        "Depth" => format!("nesting deeper than {MAX_DEPTH} levels"),
        "Nodes"
        | "Events"
        | "Aliases"
        | "AliasAnchorRatio"
        | "RecordedAnchorEvents"
        | "RecordedAnchorBytes" => {
            "aliases expand to far more nodes than the text holds (an alias bomb)".to_string()
        }
        "Documents" => "too many documents".to_string(),
        "ScalarBytes" => "too much scalar text".to_string(),
        _ => breach.to_string(),
    };
    format!("refused: {why} (parser budget: {name})")
}

/// Positions of the keys and values of one YAML document, by path.
///
/// A path is a JSON pointer (`/spec/allowedUsers/1`); the root is `""`.
#[derive(Debug, Default, Clone)]
pub struct LocationIndex {
    /// path -> (line, col) of the key (for mapping entries) or of the item (for sequence items).
    keys: HashMap<String, (u64, u64)>,
    /// path -> (line, col) of the value node.
    values: HashMap<String, (u64, u64)>,
    /// path -> text of a scalar value written as a string on purpose: quoted, a block
    /// scalar, or tagged `!!str` (directly or through an alias).
    strings: HashMap<String, String>,
}

enum Frame {
    Map {
        path: String,
        key: Option<(String, (u64, u64))>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

impl LocationIndex {
    /// Builds the index of the first document of `text`. Unparseable text gives an empty
    /// index (the deserializer reports the syntax error itself).
    pub fn build(text: &str) -> Self {
        let mut index = LocationIndex::default();
        // anchor id -> the text of an anchored scalar written as a string.
        let mut anchored: HashMap<usize, String> = HashMap::new();
        walk(text, 0, false, |node| {
            if let Some(key) = node.key {
                index.keys.insert(node.path.to_string(), key);
            }
            index.values.insert(node.path.to_string(), node.at);
            match node.event {
                Event::Scalar(value, style, anchor, tag) => {
                    let tagged_str = tag
                        .as_ref()
                        .is_some_and(|t| t.handle() == "tag:yaml.org,2002:" && t.suffix() == "str");
                    if *style != ScalarStyle::Plain || tagged_str {
                        if *anchor != 0 {
                            anchored.insert(*anchor, value.to_string());
                        }
                        index.strings.insert(node.path.to_string(), value.to_string());
                    }
                }
                Event::Alias(anchor) => {
                    if let Some(text) = anchored.get(anchor) {
                        index.strings.insert(node.path.to_string(), text.clone());
                    }
                }
                _ => {}
            }
            true
        });
        index
    }

    /// The position of the key at `path` (for a sequence item, the item itself).
    pub fn key(&self, path: &str) -> Option<(u64, u64)> {
        self.keys.get(path).copied()
    }

    /// The position of the value at `path`.
    pub fn value(&self, path: &str) -> Option<(u64, u64)> {
        self.values.get(path).copied()
    }

    /// The text of the scalar at `path` when it is written as a string on purpose (quoted,
    /// a block scalar, or tagged `!!str`), so that a reader expecting a number or a
    /// boolean can refuse it instead of converting it.
    pub fn string_at(&self, path: &str) -> Option<&str> {
        self.strings.get(path).map(String::as_str)
    }

    /// The position of the key at `path`, or of its nearest ancestor that is known.
    pub fn key_or_ancestor(&self, path: &str) -> (u64, u64) {
        let mut p = path;
        loop {
            if let Some(pos) = self.key(p).or_else(|| self.value(p)) {
                return pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }
}

/// One node of a YAML document, as [`walk`] meets it.
struct Node<'a, 'e> {
    /// Its path, a JSON pointer (`""` for the root).
    path: &'a str,
    /// Where its key is (a sequence item: the item itself; the root: none).
    key: Option<(u64, u64)>,
    /// Where its value starts.
    at: (u64, u64),
    /// The event that opened it (a scalar, an alias, or the start of a collection).
    event: &'a Event<'e>,
}

/// Hands every node of the `n`th document of `text` to `visit`, in text order, until it
/// returns `false`. With `skip_null`, documents that are empty or `null` are not counted,
/// as [`documents`] drops them. The walk ends at the document's end or at a syntax error.
fn walk(text: &str, n: usize, skip_null: bool, mut visit: impl FnMut(Node<'_, '_>) -> bool) {
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(strip_bom(text));
    // Documents counted so far; whether the next event is a document's root; whether
    // the walk is inside the `n`th document.
    let (mut counted, mut root, mut inside) = (0, false, false);
    while let Some(Ok((event, span))) = parser.next_event() {
        match event {
            Event::DocumentStart(..) => {
                root = true;
                continue;
            }
            Event::DocumentEnd if inside => return,
            Event::MappingEnd | Event::SequenceEnd if inside => {
                stack.pop();
                continue;
            }
            // Structure and presentation (anchors, comments): not nodes.
            _ if !event.is_node() => continue,
            _ => {}
        }
        if std::mem::take(&mut root) && !(skip_null && is_null(&event)) {
            inside = counted == n;
            counted += 1;
        }
        if !inside {
            if counted > n {
                return;
            }
            continue;
        }
        let at = (span.start.line() as u64, span.start.col() as u64 + 1);
        if let Event::Scalar(value, ..) = &event
            && let Some(Frame::Map { key: key @ None, .. }) = stack.last_mut()
        {
            *key = Some((value.to_string(), at));
            continue;
        }
        let (path, key) = match stack.last_mut() {
            None => (String::new(), None),
            Some(Frame::Map { path, key }) => {
                let (k, kpos) = key.take().unwrap_or_default();
                (format!("{path}/{}", escape(&k)), Some(kpos))
            }
            Some(Frame::Seq { path, next }) => {
                *next += 1;
                (format!("{path}/{}", *next - 1), Some(at))
            }
        };
        let more = visit(Node {
            path: &path,
            key,
            at,
            event: &event,
        });
        if !more {
            return;
        }
        match event {
            Event::MappingStart(..) => stack.push(Frame::Map { path, key: None }),
            Event::SequenceStart(..) => stack.push(Frame::Seq { path, next: 0 }),
            _ => {}
        }
    }
}

/// Whether a document's root event is an empty or `null` document.
fn is_null(root: &Event<'_>) -> bool {
    match root {
        Event::Scalar(value, style, _, tag) => {
            tag.as_ref()
                .is_some_and(|t| t.handle() == "tag:yaml.org,2002:" && t.suffix() == "null")
                || *style == ScalarStyle::Plain && matches!(&**value, "" | "~" | "null" | "Null" | "NULL")
        }
        _ => false,
    }
}

/// Where the value at `pointer` starts in the `document`th document of `text` (counted as
/// [`documents`] counts them: empty and `null` documents left out), as (line, column); the
/// nearest ancestor's place when the text has no such value. `None` when the text does not
/// parse as YAML up to there (several JSON values one after another, for one).
pub fn position(text: &str, document: usize, pointer: &str) -> Option<(u64, u64)> {
    let mut best: Option<(usize, (u64, u64))> = None;
    walk(text, document, true, |node| {
        let exact = node.path == pointer;
        let ancestor =
            pointer.starts_with(node.path) && pointer.as_bytes().get(node.path.len()) == Some(&b'/');
        if (exact || ancestor) && best.is_none_or(|(len, _)| node.path.len() > len) {
            best = Some((node.path.len(), node.at));
        }
        !exact
    });
    best.map(|(_, at)| at)
}

/// Escapes one JSON pointer segment (`~` → `~0`, `/` → `~1`).
pub fn escape(segment: &str) -> std::borrow::Cow<'_, str> {
    if segment.bytes().any(|b| b == b'~' || b == b'/') {
        std::borrow::Cow::Owned(segment.replace('~', "~0").replace('/', "~1"))
    } else {
        std::borrow::Cow::Borrowed(segment)
    }
}

/// Writes a value as one YAML document (block style, key order kept; multi-line strings
/// as literal blocks, long single-line strings left plain; YAML 1.1 look-alikes quoted
/// so that kubectl reads them back as strings).
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, serde_saphyr::SerializeError> {
    let options = serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX };
    let mut text = serde_saphyr::to_string_with_options(value, options)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_and_items() {
        let text = "a: 1\nspec:\n  list: [\"x\", \"y\"]\n  m:\n    k/v: 2\n  seq:\n    - name: c\n";
        let ix = LocationIndex::build(text);
        assert_eq!(ix.key("/a"), Some((1, 1)));
        assert_eq!(ix.value("/a"), Some((1, 4)));
        assert_eq!(ix.key("/spec/list/1"), Some((3, 15)));
        assert_eq!(ix.key("/spec/m/k~1v"), Some((5, 5)));
        assert_eq!(ix.key("/spec/seq/0/name"), Some((7, 7)));
        assert_eq!(ix.key_or_ancestor("/spec/m/nope/deeper"), (4, 3));
    }

    /// `position` counts documents as `documents` does (empty and `null` ones left out),
    /// reads JSON as YAML, finds List items by their pointer, and falls back to the nearest
    /// ancestor the text has.
    #[test]
    fn positions_of_values_in_documents() {
        let multi = "a: 1\n---\n---\nnull\n--- ~\n---\nkind: Pod\nspec:\n  containers:\n  - name: c\n    ports: [{containerPort: 9}]\n";
        let list = r#"{"kind": "List", "items": [
  {"kind": "Pod"},
  {"kind": "Pod", "spec": {"a/b": 2}}]}"#;
        type Case<'a> = (&'a str, usize, &'a str, Option<(u64, u64)>);
        let cases: &[Case] = &[
            (multi, 0, "/a", Some((1, 4))),
            (multi, 1, "", Some((7, 1))),
            (
                multi,
                1,
                "/spec/containers/0/ports/0/containerPort",
                Some((11, 29)),
            ),
            // Not in the text: the nearest ancestor that is.
            (multi, 1, "/spec/containers/0/image", Some((10, 5))),
            (multi, 1, "/spec/containersX", Some((9, 3))),
            (multi, 2, "", None),
            (list, 0, "/items/1/spec/a~1b", Some((3, 35))),
            (list, 0, "/items/0", Some((2, 3))),
            // Comments, anchors and aliases are no documents and no nodes of their own.
            (
                "# c\n---\n# c\nkind: &k Pod # c\nspec: {a: *k}\n",
                0,
                "/spec/a",
                Some((5, 11)),
            ),
            // Several JSON values one after another are not YAML: no place past the first.
            ("{\"a\": 1} {\"b\": 2}", 1, "/b", None),
            // Broken before the value: the nearest ancestor read before the break.
            ("a: [1\n", 0, "/a/0", Some((1, 4))),
        ];
        for &(text, document, pointer, want) in cases {
            assert_eq!(
                position(text, document, pointer),
                want,
                "{document} {pointer} in {text:?}"
            );
        }
    }

    #[test]
    fn yaml_errors_have_positions() {
        let e = documents("a: [1\n", "f.yaml").unwrap_err();
        assert_eq!(e.location.file, "f.yaml");
        assert!(e.location.line >= 1);
        let e = documents("{\"a\": }", "f.json").unwrap_err();
        assert_eq!((e.location.line, e.location.col), (1, 7));
    }

    #[test]
    fn yaml_1_2_booleans() {
        let d = documents("v: y\nw: yes\nx: true\n", "f").unwrap();
        assert_eq!(d[0], crate::json!({"v": "y", "w": "yes", "x": true}));
    }

    #[test]
    fn json_streams_bom_and_flow_style() {
        let two = "{\"a\": 1}\n---\n{\"b\": 2}\n";
        assert_eq!(documents(two, "f").unwrap().len(), 2);
        assert_eq!(documents("{\"a\": 1} {\"b\": 2}", "f").unwrap().len(), 2);
        assert_eq!(documents("\u{feff}{\"a\": 1}", "f").unwrap().len(), 1);
        assert_eq!(
            documents("{a: 1, b: [x]}", "f").unwrap(),
            vec![crate::json!({"a": 1, "b": ["x"]})]
        );
        // Broken inside the first JSON value: the JSON error, not a YAML reading of it.
        let e = documents("{\"a\": }", "f").unwrap_err();
        assert_eq!((e.location.line, e.location.col), (1, 7), "{e}");
        let v: crate::value::Value = from_str("\u{feff}{kind: x}", "f").unwrap();
        assert_eq!(v["kind"], "x");
    }

    #[test]
    fn index_knows_strings_written_on_purpose() {
        let text = "a: 1\nb: '1'\nc: \"x\"\nd: !!str 2\ne: &x '3'\nf: *x\ng: |\n  4\nh: [5, '6']\n";
        let ix = LocationIndex::build(text);
        assert_eq!(ix.string_at("/a"), None);
        assert_eq!(ix.string_at("/b"), Some("1"));
        assert_eq!(ix.string_at("/c"), Some("x"));
        assert_eq!(ix.string_at("/d"), Some("2"));
        assert_eq!(ix.string_at("/f"), Some("3"));
        assert_eq!(ix.string_at("/g"), Some("4\n"));
        assert_eq!(ix.string_at("/h/0"), None);
        assert_eq!(ix.string_at("/h/1"), Some("6"));
    }

    #[test]
    fn budgets_grow_with_the_text() {
        let text = "a: 1\n---\n".repeat(2_000);
        assert_eq!(documents(&text, "f").unwrap().len(), 2_000);
        // The deepest accepted nesting reads on a 2 MiB thread (what `check` and the
        // server's workers get), even in a debug build; one level more is refused.
        for (depth, ok) in [(MAX_DEPTH - 1, true), (MAX_DEPTH + 1, false), (10_000, false)] {
            let text = format!("x: {}{}\n", "[".repeat(depth), "]".repeat(depth));
            let read = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || documents(&text, "f").is_ok())
                .unwrap()
                .join()
                .unwrap();
            assert_eq!(read, ok, "depth {depth}");
        }
    }

    #[test]
    fn multi_document_skips_empty() {
        let d = documents("---\na: 1\n---\n---\nb: 2\n", "f").unwrap();
        assert_eq!(d.len(), 2);
    }
}
