//! A fast path from YAML text to [`Value`]s, for the common subset of YAML that
//! manifests are written in.
//!
//! Why: reading many small manifests (`check DIR`), most of the time went into
//! serde-saphyr's deserializer layer (event look-ahead, comment bookkeeping, duplicate-key
//! fingerprints, budget accounting) rather than into YAML parsing. This module builds the
//! `Value`s straight from the events of the same parser (`granit_parser`, with the same
//! parser options serde-saphyr uses), so that the parse itself is all that is paid.
//!
//! What it handles: streams of documents made of block and flow mappings and sequences,
//! scalars in any style (plain, quoted, literal, folded), comments. Plain scalars are
//! resolved only where the result is certain to be what serde-saphyr gives for
//! a [`Value`] with `strict_booleans` (YAML 1.2 core booleans): null spellings,
//! `true`/`false` spellings, decimal integers without sign or leading zero that fit `u64`,
//! and text that cannot be a number (it does not start with a digit, `.`, or a sign
//! followed by a digit or `.`; or it holds a byte no number spelling has, as in `100m`).
//!
//! Everything else falls back: [`documents`] returns `None` and the caller reads the whole
//! text with serde-saphyr, so values, errors and their positions stay exactly serde-saphyr's.
//! That is: any parser error, anchors and aliases (so alias bombs always meet
//! serde-saphyr's budget), tags, `%YAML` directives, merge keys (`<<`), keys that are not
//! plain or quoted text (collections, null, booleans, numbers as keys, empty keys),
//! duplicate keys, other numbers (signed, floats, `0x`/`0o`, `1_000`, `007`, `.inf`, …),
//! nesting near [`MAX_DEPTH`], and texts that come near half of any budget
//! ([`yaml_options_for`]).
//!
//! `tests/yaml_fast.rs` compares the two paths on every YAML file of the repository and of
//! the shared fixtures, on generated documents and on a table of tricky scalars.

use crate::value::{Map, Str, Value};
use serde_saphyr::granit_parser::{self, Event, Parser, ScalarStyle};

use super::{MAX_DEPTH, yaml_options_for};

/// A collection being built.
enum Frame {
    Seq(Vec<Value>),
    Map(Map<String, Value>, Option<String>),
}

/// Running counts, checked against half of each budget.
struct Limits {
    events: usize,
    nodes: usize,
    documents: usize,
    scalar_bytes: usize,
    comment_bytes: usize,
    max_events: usize,
    max_nodes: usize,
    max_documents: usize,
    max_scalar_bytes: usize,
    max_comment_bytes: usize,
}

impl Limits {
    fn within(&self) -> bool {
        self.events <= self.max_events / 2
            && self.nodes <= self.max_nodes / 2
            && self.documents <= self.max_documents / 2
            && self.scalar_bytes <= self.max_scalar_bytes / 2
            && self.comment_bytes <= self.max_comment_bytes / 2
    }
}

/// The non-null documents of a YAML stream (text without a byte-order mark), or `None`
/// when the text is outside the subset this module reads with certainty (then read it
/// with serde-saphyr).
pub(crate) fn documents(text: &str) -> Option<Vec<Value>> {
    let options = yaml_options_for(text);
    let budget = options.budget.clone().unwrap_or_default();
    let mut parser_options = granit_parser::Options::default();
    parser_options.simple_key_max_lookahead = budget.simple_key_max_lookahead;
    parser_options.flow_nesting_limit = budget.flow_nesting_limit;
    parser_options.block_nesting_limit = parser_options
        .block_nesting_limit
        .max(budget.max_depth.saturating_add(1));
    parser_options.emit_comments = options.emit_comments;
    parser_options.max_buffered_comment_events = budget.max_buffered_comment_events;
    parser_options.strict_indentation = options.strict_indentation;
    let mut limits = Limits {
        events: 0,
        nodes: 0,
        documents: 0,
        scalar_bytes: 0,
        comment_bytes: 0,
        max_events: budget.max_events,
        max_nodes: budget.max_nodes,
        max_documents: budget.max_documents,
        max_scalar_bytes: budget.max_total_scalar_bytes,
        max_comment_bytes: budget.max_total_comment_bytes,
    };

    let mut parser = Parser::new_from_str_with_options(text, parser_options);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Value> = None;
    loop {
        let (event, _span) = parser.next_event()?.ok()?;
        limits.events += 1;
        let value = match event {
            Event::StreamStart => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(_, version) => {
                if version.is_some() || !stack.is_empty() {
                    return None;
                }
                limits.documents += 1;
                if !limits.within() {
                    return None;
                }
                continue;
            }
            Event::DocumentEnd => {
                if !stack.is_empty() {
                    return None;
                }
                match root.take() {
                    None | Some(Value::Null) => {}
                    Some(v) => docs.push(v),
                }
                continue;
            }
            Event::Comment(comment, _) => {
                limits.comment_bytes = limits.comment_bytes.saturating_add(comment.len());
                if !limits.within() {
                    return None;
                }
                continue;
            }
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                limits.nodes += 1;
                limits.scalar_bytes = limits.scalar_bytes.saturating_add(text.len());
                if !limits.within() {
                    return None;
                }
                if let Some(Frame::Map(_, key @ None)) = stack.last_mut() {
                    *key = Some(map_key(text.as_ref(), style)?);
                    continue;
                }
                scalar(text, style)?
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                if anchor != 0 || tag.is_some() || stack.len() + 2 >= MAX_DEPTH {
                    return None;
                }
                if let Some(Frame::Map(_, None)) = stack.last() {
                    return None; // a collection as a key
                }
                limits.nodes += 1;
                if !limits.within() {
                    return None;
                }
                let is_map = matches!(event, Event::MappingStart(..));
                stack.push(if is_map {
                    Frame::Map(Map::new(), None)
                } else {
                    Frame::Seq(Vec::new())
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop()? {
                Frame::Seq(items) => Value::Array(items),
                Frame::Map(..) => return None,
            },
            Event::MappingEnd => match stack.pop()? {
                Frame::Map(map, None) => Value::Object(map),
                Frame::Map(_, Some(_)) | Frame::Seq(_) => return None,
            },
            // Aliases, anchors (never emitted with these options) and anything newer.
            _ => return None,
        };
        match stack.last_mut() {
            None => {
                if root.replace(value).is_some() {
                    return None;
                }
            }
            Some(Frame::Seq(items)) => items.push(value),
            Some(Frame::Map(map, key)) => {
                let key = key.take()?;
                if map.insert(key, value).is_some() {
                    return None; // a duplicate key: serde-saphyr reports it
                }
            }
        }
    }
    if !stack.is_empty() || root.is_some() {
        return None;
    }
    Some(docs)
}

/// A mapping key: text only, not a merge key, not empty.
fn map_key(text: &str, style: ScalarStyle) -> Option<String> {
    if text.is_empty() || text == "<<" {
        return None;
    }
    match scalar_ref(text, style)? {
        Resolved::Str => Some(text.to_string()),
        Resolved::Value(_) => None,
    }
}

/// A scalar value (not a key).
fn scalar(text: std::borrow::Cow<'_, str>, style: ScalarStyle) -> Option<Value> {
    match scalar_ref(&text, style)? {
        // Held inline when short, whether the parser lent or gave the text.
        Resolved::Str => Some(Value::String(Str::from(text))),
        Resolved::Value(v) => Some(v),
    }
}

enum Resolved {
    /// The text itself, as a string.
    Str,
    /// A null, boolean or integer.
    Value(Value),
}

/// How serde-saphyr resolves an untagged scalar for a [`Value`], where that is
/// certain; `None` where it is not.
fn scalar_ref(text: &str, style: ScalarStyle) -> Option<Resolved> {
    if style != ScalarStyle::Plain {
        return Some(Resolved::Str);
    }
    let resolved = match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            // serde-saphyr trims these before resolving; a plain scalar never holds them
            // at its ends, but be sure.
            if text.starts_with([' ', '\t', '\r', '\n']) || text.ends_with([' ', '\t', '\r', '\n']) {
                return None;
            }
            let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
            let numeric = unsigned
                .as_bytes()
                .first()
                .is_some_and(|b| b.is_ascii_digit() || *b == b'.');
            // Nor can text holding a byte that no number spelling has (integers in any
            // radix with `_`, Rust's float syntax with `inf`/`infinity`/`nan`): `1024 65535`,
            // `100m`, `1Gi`, `8080/TCP`.
            let number_byte = |b: u8| b.is_ascii_digit() || b"+-._xXoOabcdefABCDEFinftyINFTY".contains(&b);
            // Nor text with two dots (`8.8.8.8`): no number spelling has more than one.
            let dots = text.bytes().filter(|b| *b == b'.').count();
            if !numeric || !text.bytes().all(number_byte) || dots > 1 {
                return Some(Resolved::Str);
            }
            // Only plain decimal integers are resolved here: no sign, no leading zero,
            // no underscore, and small enough for u64 without doubt.
            let digits = text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit());
            if !digits || (text.len() > 1 && text.starts_with('0')) {
                return None;
            }
            Value::from(text.parse::<u64>().ok()?)
        }
    };
    Some(Resolved::Value(resolved))
}
