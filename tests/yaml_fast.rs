//! The fast YAML path (`src/source/fast.rs`) against serde-saphyr: on every YAML file of
//! the repository and of the shared fixtures, on generated documents in several styles, and
//! on a table of tricky scalars. Where the fast path reads a text it must give exactly
//! serde-saphyr's values, key order included; where it does not, the reader falls back, so
//! `source::documents` must always equal serde-saphyr's result (values or error).
#![allow(clippy::panic)] // test helpers: a differing result is a failed test

mod common;

use std::path::{Path, PathBuf};

use ciguard::source::{self, yaml_documents_fast, yaml_documents_saphyr};
use ciguard::value::Value;
use proptest::prelude::*;

/// Serialized with key order, so that a difference in order is a difference.
fn text_of(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_json::to_string(d).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compares the two paths on one text; returns whether the fast path read it.
fn same(text: &str, what: &str) -> bool {
    let slow = yaml_documents_saphyr(text, "f");
    let fast = yaml_documents_fast(text);
    if let Some(fast) = &fast {
        match &slow {
            Ok(slow) => assert_eq!(text_of(fast), text_of(slow), "{what}: fast path differs"),
            Err(e) => panic!("{what}: fast path read a text serde-saphyr refuses ({e}):\n{text}"),
        }
    }
    // Whichever path is taken, the reader's answer is serde-saphyr's.
    match (source::documents(text, "f"), slow) {
        (Ok(a), Ok(b)) if !source::looks_like_json(text) => assert_eq!(text_of(&a), text_of(&b), "{what}"),
        (Err(a), Err(b)) if !source::looks_like_json(text) => {
            assert_eq!(a.to_string(), b.to_string(), "{what}")
        }
        (_, _) if source::looks_like_json(text) => {}
        (a, b) => panic!("{what}: reader {a:?} but serde-saphyr {b:?}"),
    }
    fast.is_some()
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !matches!(name, "target" | "charts" | ".git" | "node_modules") {
                yaml_files(&path, out);
            }
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(path);
        }
    }
}

/// Every YAML file of the repository (Helm chart templates skipped: they are not YAML
/// until rendered).
#[test]
fn repository_yaml_files() {
    let mut files = Vec::new();
    yaml_files(Path::new(env!("CARGO_MANIFEST_DIR")), &mut files);
    assert!(files.len() > 50, "{} files", files.len());
    let mut fast = 0;
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        fast += usize::from(same(&text, &file.display().to_string()));
    }
    // Most are read by the fast path (the rest use anchors, tags, floats, …).
    assert!(fast * 2 > files.len(), "fast path read {fast} of {}", files.len());
}

/// Every YAML file under ../shared (the upstream Pod Security fixtures, real pods): all
/// of them are read by the fast path.
#[test]
fn shared_yaml_files() {
    let Some(dir) = common::shared("") else { return };
    let mut files = Vec::new();
    yaml_files(&dir, &mut files);
    assert!(files.len() > 300, "{} files", files.len());
    let mut fell_back = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !same(&text, &file.display().to_string()) {
            fell_back.push(file.display().to_string());
        }
    }
    assert!(fell_back.is_empty(), "fell back: {fell_back:#?}");
}

/// Scalars whose reading is easy to get wrong: each is compared as a value, as a sequence
/// item, in flow style, as a key, and quoted. `fast` says whether the fast path reads it
/// (`false`: it must fall back).
#[test]
fn tricky_scalars() {
    let table: &[(&str, bool)] = &[
        ("yes", true),
        ("no", true),
        ("on", true),
        ("off", true),
        ("y", true),
        ("n", true),
        ("true", true),
        ("True", true),
        ("TRUE", true),
        ("false", true),
        ("FALSE", true),
        ("tRUE", true),
        ("null", true),
        ("Null", true),
        ("NULL", true),
        ("nULL", true),
        ("~", true),
        ("", true),
        ("0", true),
        ("7", true),
        ("8080", true),
        ("18446744073709551615", false),
        ("18446744073709551616", false),
        ("999999999999999999", true),
        ("1234567890123456789", true),
        ("340282366920938463463374607431768211456", false),
        ("-0", false),
        ("-1", false),
        ("+1", false),
        ("007", false),
        ("0o17", false),
        ("0x1F", false),
        ("0b101", false),
        ("1_000", false),
        ("1e3", false),
        ("1E3", false),
        (".5", false),
        ("0.", false),
        ("1.5", false),
        ("-.inf", false),
        (".inf", false),
        (".NaN", false),
        ("inf", true),
        ("nan", true),
        ("infinity", true),
        ("-inf", true),
        ("1e999", false),
        ("1024 65535", true),
        ("8.8.8.8", true),
        ("1..2", true),
        ("1.2e.3", true),
        ("1e3x", false),
        ("0xfg", true),
        ("8080/TCP", true),
        ("2001-12-14t21:59:43.10-05:00", true),
        ("2002-12-14", false),
        ("100m", true),
        ("1Gi", true),
        ("-c", true),
        ("--foo=bar", true),
        ("+", true),
        ("-.", false),
        ("_1", true),
        (".hidden", true),
        ("a b c", true),
        ("/bin/sh", true),
        ("$(HOME)", true),
        ("x:y", true),
        ("é", true),
        ("1:2", true),
    ];
    for (scalar, fast) in table {
        let docs = [
            format!("v: {scalar}\n"),
            format!("- {scalar}\n"),
            format!("{{a: [{scalar}]}}\n"),
            format!("\"{scalar}\": 1\n"),
            format!("v: '{scalar}'\n"),
            format!("v: \"{scalar}\"\n"),
            format!("v: |\n  {scalar}\n"),
        ];
        for (i, doc) in docs.iter().enumerate() {
            let read = same(doc, &format!("{scalar:?} in {doc:?}"));
            if i < 2 {
                assert_eq!(read, *fast, "{scalar:?} in {doc:?}: fast path read it: {read}");
            }
        }
        // As a plain key: never read fast unless it is text.
        same(&format!("{scalar}: 1\n"), &format!("{scalar:?} as a key"));
    }
}

/// Texts outside the subset: every one falls back, and the reader gives serde-saphyr's
/// answer (values or the same error).
#[test]
fn fallbacks() {
    let texts = [
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: !custom x\n",
        "base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n",
        "a: 1\na: 2\n",
        "? [a]\n: 1\n",
        "%YAML 1.2\n---\na: 1\n",
        "a: [1\n",
        "a: b: c\n",
        "a:\n  - b\n c\n",
        "1: x\n",
        "null: x\n",
        "true: x\n",
        "\"\": x\n",
        "a: 1.5\n",
        "a: -3\n",
    ];
    for text in texts {
        assert!(!same(text, text), "read fast: {text:?}");
    }
    // An alias bomb is refused with serde-saphyr's budget error.
    let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
                d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
                g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
    assert!(!same(bomb, "billion laughs"));
    assert!(source::documents(bomb, "f").is_err());
    // Nesting: up to the limit the same values or the same error.
    for depth in [1, 30, 60, 61, 62, 63, 64, 65, 100] {
        let text = format!("x: {}{}\n", "[".repeat(depth), "]".repeat(depth));
        same(&text, &format!("depth {depth}"));
        let text = format!(
            "x:\n{}",
            (1..depth)
                .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
                .collect::<String>()
        );
        same(&text, &format!("block depth {depth}"));
    }
}

/// Streams: documents, empty documents, comments, document end markers.
#[test]
fn streams_and_comments() {
    let texts = [
        "",
        "# only a comment\n",
        "---\n",
        "---\n---\n",
        "a: 1\n---\n---\nb: 2\n...\n---\nc: 3\n",
        "--- # c\na: 1 # c\n# c\nb: # c\n  - x # c\n  # c\n  - y\n",
        "null\n---\nx\n",
        "just text\n",
        "- a\n- b\n",
        "a:\n  b:\n    c: |\n      multi\n      line\n    d: >\n      folded\n      text\n\n    e: x\n",
        "a: \"esc\\n\\t\\u00e9\"\nb: 'it''s'\n",
        "a: plain\n  continued\n  lines\n",
        "{a: 1, b: {c: [x, y, {d: e}]}}\n",
        "[1, 2, [3]]\n",
        "a: []\nb: {}\nc:\nd: ~\n",
        "a:\n- x\n- y\n",
    ];
    for text in texts {
        same(text, text);
    }
}

/// A JSON-like value, generated.
fn value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        "[a-z][a-zA-Z0-9._/-]{0,12}",
        Just("apiVersion".to_string()),
        Just("yes".to_string()),
        Just("on".to_string()),
        Just("null".to_string()),
        Just("1".to_string()),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[ -~]{0,16}".prop_map(Value::from),
        prop_oneof![
            Just("yes"),
            Just("on"),
            Just("0x1F"),
            Just("007"),
            Just("1e3"),
            Just("-c"),
            Just("~"),
            Just(""),
            Just("true"),
            Just("12"),
            Just("a: b"),
            Just("#x"),
            Just("line\nbreak"),
        ]
        .prop_map(|s| Value::from(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A value written as plain flow YAML, scalars unquoted where YAML allows.
fn flow(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => {
            let plain = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._/ ".contains(&b))
                && !s.starts_with([' ', '-'])
                && !s.ends_with(' ');
            if plain {
                out.push_str(s);
            } else {
                out.push_str(&serde_json::to_string(s.as_str()).unwrap_or_default());
            }
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(&Value::from(k.as_str()), out);
                out.push_str(": ");
                flow(item, out);
            }
            out.push('}');
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Generated values written in block style (serde-saphyr's writer, with comments
    /// added), flow style with plain scalars, JSON-in-YAML with `---` between documents:
    /// the fast path, where it reads, gives serde-saphyr's values.
    #[test]
    fn generated_documents(values in prop::collection::vec(value(), 1..4)) {
        let mut block = String::new();
        let mut flowed = String::new();
        let mut quoted = String::new();
        for v in &values {
            let yaml = source::to_yaml(v).unwrap_or_default();
            block.push_str("--- # a document\n");
            for line in yaml.lines() {
                block.push_str(line);
                if !line.ends_with('|') && !line.ends_with('-') && !line.contains(['#', '"', '\'']) {
                    block.push_str(" # note");
                }
                block.push('\n');
            }
            flowed.push_str("---\n");
            flow(v, &mut flowed);
            flowed.push('\n');
            quoted.push_str("---\n");
            quoted.push_str(&serde_json::to_string_pretty(v).unwrap_or_default());
            quoted.push('\n');
        }
        same(&block, &block);
        same(&flowed, &flowed);
        same(&quoted, &quoted);
        // Without comments, the writer's own output reads fast or falls back the same.
        let plain: String = values.iter().map(|v| format!("---\n{}", source::to_yaml(v).unwrap_or_default())).collect();
        same(&plain, &plain);
    }
}
