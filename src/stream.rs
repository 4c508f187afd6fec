//! Reading an input's documents one by one, as they are parsed.
//!
//! [`stream_text`] hands out the same documents as [`workload::parse_text`], in the same
//! order and with the same indexes and errors, but the items of a JSON `v1/List` (what
//! `kubectl get pods -A -o json` prints) go to the sink as soon as each is read: the
//! parsed objects of a List of 20,000 pods are never all in memory at once, only the
//! items in flight. [`stream_input`] does not hold the input's text either: it reads a
//! JSON file twice through a buffer (stdin is copied to an anonymous file first).
//!
//! JSON is read twice: a first pass without allocation finds each top-level value's
//! `kind` and whether it has an `items` array (kubectl writes `items` before `kind`, so
//! whether an object is a List is known only at its end); the second pass streams the
//! items of the Lists. Text that the first pass does not read cleanly (YAML, JSON then
//! `---`, a List whose `items` is not an array, a repeated key) is read by
//! [`workload::parse_text`] itself, so that its answer and its error stay exactly those.
//!
//! ```
//! use ciguard::stream::stream_text;
//!
//! let text = r#"{"apiVersion":"v1","items":[
//!     {"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}},
//!     {"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"}}],"kind":"List"}"#;
//! let mut names = Vec::new();
//! let count = stream_text(text, "pods.json", &mut |doc| {
//!     names.push(doc.name().to_string());
//!     true
//! })?;
//! assert_eq!((count, names), (2, vec!["a".to_string(), "b".to_string()]));
//! # Ok::<(), ciguard::workload::WorkloadError>(())
//! ```

use std::{
    collections::VecDeque,
    fmt,
    fs::File,
    io::{BufReader, Read, Seek, SeekFrom},
};

use crate::value::Value;
use serde::{
    Deserialize, Deserializer,
    de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor},
};

use crate::{
    source,
    workload::{self, Document, Input, WorkloadError},
};

/// Where documents go: returns `false` to stop reading (the reader then returns early,
/// without an error).
pub type Sink<'a> = dyn FnMut(Document) -> bool + 'a;

/// Reads one input and hands each of its documents to `sink` as it is read (see the
/// module documentation). Returns how many documents were handed out.
///
/// A JSON input is read from its file twice, never held whole: stdin is first copied
/// to an anonymous temporary file. Other input is read whole, as
/// [`workload::read_input`] reads it.
pub fn stream_input(input: &Input, sink: &mut Sink<'_>) -> Result<usize, WorkloadError> {
    let (name, file) = match input {
        Input::Stdin => ("-".to_string(), spool_stdin()),
        Input::File(path) => (path.display().to_string(), File::open(path)),
    };
    let file = file.map_err(|source| WorkloadError::Read {
        path: name.clone(),
        source,
    })?;
    stream_file(&file, &name, sink)
}

/// Stdin copied to an anonymous temporary file, read from its start.
fn spool_stdin() -> std::io::Result<File> {
    let mut file = tempfile::tempfile()?;
    std::io::copy(&mut std::io::stdin().lock(), &mut file)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// How much of a file decides whether it is streamed as JSON.
const PREFIX: usize = 64 << 10;

/// [`stream_text`] over a file, without holding its text: the first pass and the second
/// read the file from its start. Whatever the first pass does not read cleanly, and
/// any error of the second, is read again whole, so the answer is `parse_text`'s.
fn stream_file(file: &File, name: &str, sink: &mut Sink<'_>) -> Result<usize, WorkloadError> {
    let io = |source| WorkloadError::Read {
        path: name.to_string(),
        source,
    };
    let whole = |sink: &mut Sink<'_>| -> Result<usize, WorkloadError> {
        let mut bytes = Vec::new();
        let mut f = file;
        f.seek(SeekFrom::Start(0))
            .and_then(|_| f.read_to_end(&mut bytes))
            .map_err(io)?;
        let text = workload::decode(bytes).map_err(io)?;
        stream_text(&text, name, sink)
    };
    let mut prefix = Vec::with_capacity(PREFIX);
    let mut f = file;
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.take(PREFIX as u64).read_to_end(&mut prefix))
        .map_err(io)?;
    if prefix.starts_with(&[0xff, 0xfe]) || prefix.starts_with(&[0xfe, 0xff]) {
        return whole(sink);
    }
    let bom = if prefix.starts_with(b"\xef\xbb\xbf") { 3 } else { 0 };
    let valid = match std::str::from_utf8(&prefix[bom..]) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&prefix[bom..bom + e.valid_up_to()]).unwrap_or_default(),
    };
    if !source::looks_like_json(valid) || source::opens_like_flow_yaml(valid) {
        return whole(sink);
    }
    let from_start = || -> Result<BufReader<&File>, WorkloadError> {
        let mut f = file;
        f.seek(SeekFrom::Start(bom as u64)).map_err(io)?;
        Ok(BufReader::with_capacity(64 << 10, f))
    };
    let Some(heads) = scan(serde_json::de::IoRead::new(from_start()?)) else {
        return whole(sink);
    };
    if !heads.iter().any(|h| h.list) {
        return whole(sink);
    }
    let mut de = serde_json::Deserializer::from_reader(from_start()?);
    match stream_heads(&mut de, &heads, name, sink) {
        // Bytes that are not UTF-8 inside a string, a file changed between the passes:
        // the error `parse_text` gives for the whole text.
        Err(Failure::Json(e)) => match whole(&mut |_| true) {
            Err(exact) => Err(exact),
            Ok(_) => Err(source::json_error(&e, name).into()),
        },
        Err(Failure::Invalid(e)) => Err(e),
        Ok(n) => Ok(n),
    }
}

/// Parses the text of one input, handing each document to `sink` as it is read: the
/// documents, indexes and errors of [`workload::parse_text`], in its order. Documents
/// handed out before an error stay handed out.
pub fn stream_text(text: &str, source_name: &str, sink: &mut Sink<'_>) -> Result<usize, WorkloadError> {
    let whole = |sink: &mut Sink<'_>| -> Result<usize, WorkloadError> {
        let docs = workload::parse_text(text, source_name)?;
        let n = docs.len();
        for doc in docs {
            if !sink(doc) {
                break;
            }
        }
        Ok(n)
    };
    let body = source::strip_bom(text);
    if !source::looks_like_json(body) || source::opens_like_flow_yaml(body) {
        return whole(sink);
    }
    let Some(heads) = scan(serde_json::de::StrRead::new(body)) else {
        return whole(sink);
    };
    if !heads.iter().any(|h| h.list) {
        return whole(sink);
    }
    let mut de = serde_json::Deserializer::from_str(body);
    match stream_heads(&mut de, &heads, source_name, sink) {
        Err(Failure::Json(e)) => Err(source::json_error(&e, source_name).into()),
        Err(Failure::Invalid(e)) => Err(e),
        Ok(n) => Ok(n),
    }
}

/// Why the second pass stopped.
enum Failure {
    /// The JSON reader's own error.
    Json(serde_json::Error),
    /// A document that is not a Kubernetes object, or a List item that is not.
    Invalid(WorkloadError),
}

/// The second pass over the values the first found.
fn stream_heads<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    heads: &[Head],
    source_name: &str,
    sink: &mut Sink<'_>,
) -> Result<usize, Failure> {
    let mut reader = Reader {
        source_name,
        next: 0,
        document: 0,
        sink,
        failed: None,
        stopped: false,
    };
    for head in heads {
        let read = if head.null {
            IgnoredAny::deserialize(&mut *de).map(|_| ())
        } else if head.list {
            let kind = head.kind.as_deref().unwrap_or("List");
            reader.list(de, kind)
        } else {
            Value::deserialize(&mut *de).map(|object| reader.top(object))
        };
        if let Some(e) = reader.failed.take() {
            return Err(Failure::Invalid(e));
        }
        read.map_err(Failure::Json)?;
        if reader.stopped {
            return Ok(reader.next);
        }
        reader.document += usize::from(!head.null);
    }
    Ok(reader.next)
}

/// What the first pass learns of one top-level JSON value.
#[derive(Debug, Default)]
struct Head {
    /// The value is `null` (skipped, as `parse_text` skips it).
    null: bool,
    /// An object whose `kind` names a List and whose `items` is an array, each key once.
    list: bool,
    /// Its `kind`, when a string.
    kind: Option<String>,
}

/// The first pass: one [`Head`] per top-level value, or `None` when the text is not a
/// clean sequence of JSON values whose Lists can be streamed.
fn scan<'de, R: serde_json::de::Read<'de>>(read: R) -> Option<Vec<Head>> {
    let mut heads = Vec::new();
    for head in serde_json::Deserializer::new(read).into_iter::<Probe>() {
        match head.ok()? {
            Probe::Clean(h) => heads.push(h),
            Probe::Unsure => return None,
        }
    }
    Some(heads)
}

/// A top-level value as the first pass reads it.
enum Probe {
    /// Nothing unusual: stream it as the head says.
    Clean(Head),
    /// An object that looks like a List but cannot be streamed as one (repeated key,
    /// `items` not an array): leave it to `parse_text`, which reports it.
    Unsure,
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ProbeVisitor)
    }
}

struct ProbeVisitor;

/// Whether an `items` value is an array (its elements skipped without allocation).
struct IsArray(bool);

impl<'de> Deserialize<'de> for IsArray {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IsArray;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IsArray, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IsArray(true))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IsArray, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IsArray(false))
            }
            fn visit_bool<E>(self, _: bool) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_i64<E>(self, _: i64) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_u64<E>(self, _: u64) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_f64<E>(self, _: f64) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_str<E>(self, _: &str) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_unit<E>(self) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Visitor<'de> for ProbeVisitor {
    type Value = Probe;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Probe, E> {
        Ok(Probe::Clean(Head {
            null: true,
            ..Head::default()
        }))
    }

    // Anything else that is not an object is read whole (and refused) by `parse_text`.
    fn visit_bool<E>(self, _: bool) -> Result<Probe, E> {
        Ok(Probe::Unsure)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Probe, E> {
        Ok(Probe::Unsure)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Probe, E> {
        Ok(Probe::Unsure)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Probe, E> {
        Ok(Probe::Unsure)
    }
    fn visit_str<E>(self, _: &str) -> Result<Probe, E> {
        Ok(Probe::Unsure)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Probe, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Probe::Unsure)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
        let (mut kind, mut items, mut repeated) = (None::<Value>, None::<bool>, false);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "kind" => {
                    repeated |= kind.is_some();
                    kind = Some(map.next_value()?);
                }
                "items" => {
                    repeated |= items.is_some();
                    items = Some(map.next_value::<IsArray>()?.0);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let kind = kind.and_then(|k| k.as_str().map(str::to_string));
        let k = kind.as_deref().unwrap_or("");
        let listy = k == "List" || k.ends_with("List") && items.is_some();
        if listy && (repeated || items != Some(true)) {
            return Ok(Probe::Unsure);
        }
        Ok(Probe::Clean(Head {
            null: false,
            list: listy,
            kind,
        }))
    }
}

/// The second pass: hands documents out in `parse_text`'s order.
struct Reader<'s, 'k> {
    source_name: &'s str,
    /// The index of the next document.
    next: usize,
    /// The top-level value being read, counted as [`source::documents`] counts them.
    document: usize,
    sink: &'k mut Sink<'k>,
    /// An error found inside the JSON reader (it travels out as a placeholder error).
    failed: Option<WorkloadError>,
    /// The sink asked to stop.
    stopped: bool,
}

impl Reader<'_, '_> {
    /// Hands out `object`, at `pointer` in the current top-level value.
    fn emit(&mut self, object: Value, pointer: String) {
        if self.stopped {
            return;
        }
        let doc = Document {
            source: self.source_name.to_string(),
            index: self.next,
            place: Some(workload::Place {
                document: self.document,
                pointer,
            }),
            object,
        };
        self.next += 1;
        self.stopped = !(self.sink)(doc);
    }

    fn invalid(&self, index: usize, message: String) -> WorkloadError {
        WorkloadError::Invalid {
            input: self.source_name.into(),
            index,
            message,
        }
    }

    /// A top-level value that is not a List.
    fn top(&mut self, object: Value) {
        if let Some(problem) = workload::not_an_object(&object) {
            self.failed = Some(self.invalid(self.next, problem));
            return;
        }
        self.emit(object, String::new());
    }

    /// A top-level List: its items as they are read, then the Lists among them,
    /// breadth first (kubectl's order, as `parse_text`).
    fn list<'de, R: serde_json::de::Read<'de>>(
        &mut self,
        de: &mut serde_json::Deserializer<R>,
        kind: &str,
    ) -> serde_json::Result<()> {
        let index = self.next;
        let mut nested = VecDeque::new();
        ListSeed {
            reader: self,
            index,
            kind,
            nested: &mut nested,
        }
        .deserialize(&mut *de)?;
        if self.failed.is_some() || self.stopped {
            return Ok(());
        }
        let flattened = workload::flatten_lists(nested, |pointer, item| {
            self.emit(item, pointer);
            !self.stopped
        });
        if let Err(message) = flattened {
            self.failed = Some(self.invalid(index, message));
        }
        Ok(())
    }
}

/// A top-level List object: streams `items`, skips the other keys.
struct ListSeed<'r, 's, 'k, 'n> {
    reader: &'r mut Reader<'s, 'k>,
    /// The List's own document index (for errors).
    index: usize,
    kind: &'n str,
    nested: &'n mut VecDeque<(String, Value)>,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a List object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "items" {
                map.next_value_seed(ItemsSeed {
                    reader: &mut *self.reader,
                    index: self.index,
                    kind: self.kind,
                    nested: &mut *self.nested,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The `items` array of a top-level List: each item handed out as it is read.
struct ItemsSeed<'r, 's, 'k, 'n> {
    reader: &'r mut Reader<'s, 'k>,
    index: usize,
    kind: &'n str,
    nested: &'n mut VecDeque<(String, Value)>,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_, '_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of Kubernetes objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while let Some(item) = seq.next_element::<Value>()? {
            if self.reader.failed.is_some() || self.reader.stopped {
                // Read to the end of the array; the caller reports or stops.
                continue;
            }
            let item_path = format!("/items/{i}");
            i += 1;
            if let Some(problem) = workload::not_an_object(&item) {
                let kind = self.kind;
                self.reader.failed = Some(
                    self.reader
                        .invalid(self.index, format!("{item_path}: {kind} item: {problem}")),
                );
            } else if workload::is_list(&item) {
                self.nested.push_back((item_path, item));
            } else {
                self.reader.emit(item, item_path);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(text: &str) -> Result<Vec<Document>, WorkloadError> {
        let mut docs = Vec::new();
        stream_text(text, "t.json", &mut |d| {
            docs.push(d);
            true
        })?;
        Ok(docs)
    }

    /// Every case reads to the same documents, or the same error, as `parse_text`.
    #[test]
    fn same_documents_and_errors_as_parse_text() {
        let pod = |n: &str| format!(r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{n}"}}}}"#);
        let cases = [
            // kubectl's order: items before kind.
            format!(
                r#"{{"apiVersion":"v1","items":[{},{}],"kind":"List","metadata":{{}}}}"#,
                pod("a"),
                pod("b")
            ),
            format!(r#"{{"kind":"PodList","apiVersion":"v1","items":[{}]}}"#, pod("a")),
            // Nested Lists, breadth first (workload::tests::nested_lists_are_expanded_breadth_first).
            format!(
                r#"{{"apiVersion":"v1","kind":"List","items":[{},{{"apiVersion":"v1","kind":"List","items":[{},{{"apiVersion":"v1","kind":"PodList","items":[{}]}}]}},{}]}}"#,
                pod("a"),
                pod("b"),
                pod("c"),
                pod("d")
            ),
            // Several values, a null, a List among them.
            format!(
                r#"{} null {{"apiVersion":"v1","kind":"List","items":[{}]}} {}"#,
                pod("x"),
                pod("y"),
                pod("z")
            ),
            // Not Lists: an object with items but no List kind; no Lists at all.
            format!(r#"{{"apiVersion":"v1","items":[{}],"kind":"Thing"}}"#, pod("a")),
            pod("solo"),
            // Errors: an item that is not an object, nested and not; items not an array.
            format!(
                r#"{} {{"apiVersion":"v1","kind":"List","items":[{},7]}}"#,
                pod("a"),
                pod("b")
            ),
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"List","items":[7]}]}"#
                .into(),
            r#"{"apiVersion":"v1","kind":"PodList","items":{}}"#.into(),
            r#"{"apiVersion":"v1","kind":"List"}"#.into(),
            r#"{"apiVersion":"v1","kind":"List","items":[],"items":[{"kind":"Pod"}]}"#.into(),
            format!(r#"{{"apiVersion":"v1","kind":"List","items":[{}]}} 7"#, pod("a")),
            // JSON, then `---` and YAML: read by parse_text.
            format!("{}\n---\nkind: Pod\napiVersion: v1\n", pod("a")),
            // Broken JSON inside a List.
            format!(
                r#"{{"apiVersion":"v1","kind":"List","items":[{}, {{"a": }}]}}"#,
                pod("a")
            ),
            // YAML.
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n".into(),
        ];
        for text in &cases {
            let want = workload::parse_text(text, "t.json");
            for got in [streamed(text), from_file(text.as_bytes())] {
                match (&want, &got) {
                    (Ok(w), Ok(g)) => assert_eq!(w, g, "{text}"),
                    (Err(w), Err(g)) => assert_eq!(w.to_string(), g.to_string(), "{text}"),
                    _ => panic!("{text}: parse_text {want:?}, streamed {got:?}"),
                }
            }
        }
    }

    fn from_file(bytes: &[u8]) -> Result<Vec<Document>, WorkloadError> {
        use std::io::Write;
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        let mut docs = Vec::new();
        stream_file(&file, "t.json", &mut |d| {
            docs.push(d);
            true
        })?;
        Ok(docs)
    }

    /// From a file: a byte-order mark, bytes that are not UTF-8 (the reader's error, as
    /// `read_input` gives it), a List longer than the prefix that decides.
    #[test]
    fn files_read_as_read_input_reads_them() {
        let list = |n: usize| {
            let pods: Vec<String> = (0..n)
                .map(|i| format!(r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p{i}"}}}}"#))
                .collect();
            format!(
                r#"{{"apiVersion":"v1","items":[{}],"kind":"List"}}"#,
                pods.join(",")
            )
        };
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend(list(3).as_bytes());
        let docs = from_file(&bom).unwrap();
        assert_eq!(docs.len(), 3);
        let long = list(5_000);
        assert!(long.len() > PREFIX);
        assert_eq!(from_file(long.as_bytes()).unwrap().len(), 5_000);
        // Inside a string, which the first pass skips without looking.
        let mut bad = list(2).into_bytes();
        let at = bad.windows(4).position(|w| w == b"\"p1\"").unwrap() + 2;
        bad[at] = 0xff;
        let e = from_file(&bad).unwrap_err();
        assert!(e.to_string().starts_with("failed to read 't.json'"), "{e}");
    }

    #[test]
    fn the_sink_can_stop_the_reading() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod"},{"apiVersion":"v1","kind":"Pod"}]}"#;
        let mut seen = 0;
        let n = stream_text(text, "t", &mut |_| {
            seen += 1;
            false
        })
        .unwrap();
        assert_eq!((seen, n), (1, 1));
    }
}
