//! The audit log: one JSON line per admission decision, written by a dedicated thread so
//! a slow disk or pipe never blocks a request.
//!
//! ```json
//! {"time":"2025-01-02T03:04:05.678Z","endpoint":"mutate","uid":"…","operation":"CREATE",
//!  "kind":"Pod","namespace":"ci","name":"job-1","policy":"gitlab-runner","allowed":true,
//!  "outcome":"patched","dryRun":false,
//!  "changes":[{"container":"build","field":"runAsUser","old":0,"new":1000,"origin":"containers.default"}],
//!  "warnings":["…"],"message":null}
//! ```
//!
//! `container` is `null` for the pod-level security context; `origin` is the policy
//! statement that decided (`build.enforced`, `job`, …), `null` where a job's value was
//! dropped with nothing in its place.

use std::{
    io::{BufWriter, Write},
    path::PathBuf,
    sync::{
        Mutex,
        mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError},
    },
    thread::JoinHandle,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

use crate::value::write_str;

use super::{
    error::ServeError,
    metrics::Endpoint,
    review::{Decision, Request},
};
use crate::merge::Change;

/// How many lines may wait for the writer before new ones are dropped (and counted).
const QUEUE: usize = 4096;

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    /// Nowhere.
    Off,
    /// Standard output.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

/// The audit log writer.
#[derive(Debug)]
pub struct Audit {
    tx: Option<SyncSender<Option<Vec<u8>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Audit {
    /// An audit log that writes nothing.
    pub fn off() -> Self {
        Audit {
            tx: None,
            thread: Mutex::new(None),
        }
    }

    /// Opens a sink.
    pub fn open(sink: &AuditSink) -> Result<Self, ServeError> {
        match sink {
            AuditSink::Off => Ok(Self::off()),
            AuditSink::Stdout => Ok(Self::to_writer(Box::new(std::io::stdout()))),
            AuditSink::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| ServeError::Audit {
                        path: path.clone(),
                        source,
                    })?;
                Ok(Self::to_writer(Box::new(file)))
            }
        }
    }

    /// Writes lines to any writer, each flushed as it is written.
    pub fn to_writer(writer: Box<dyn Write + Send>) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Option<Vec<u8>>>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("ciguard-audit".into())
            .spawn(move || write_lines(&rx, writer));
        match thread {
            Ok(handle) => Audit {
                tx: Some(tx),
                thread: Mutex::new(Some(handle)),
            },
            Err(e) => {
                tracing::error!(error = %e, "failed to start the audit writer; audit log off");
                Self::off()
            }
        }
    }

    /// Whether lines are written anywhere.
    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues one line; `false` when it had to be dropped.
    pub(crate) fn write(&self, line: Vec<u8>) -> bool {
        match &self.tx {
            None => true,
            Some(tx) => match tx.try_send(Some(line)) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => true,
                Err(TrySendError::Full(_)) => false,
            },
        }
    }

    /// Writes what is queued and stops the writer. Later lines are discarded.
    pub fn close(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(None);
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// How long the writer lets lines gather after the first of a burst, before writing
/// them in one go: under load a line costs no thread wake-up or write of its own, and a
/// line is on disk at most this much later than without the wait. 20 ms rather than 2:
/// at 2,000 requests/s the writer's wake-ups and writes cost 11 % of the server's CPU per
/// request at 2 ms and nothing measurable at 20 (docs/performance.md, "The audit
/// writer's wake-ups"); a line's `time` is the decision's, whenever it is written.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

/// The writer thread: waits for a line, lets more gather for [`GATHER`], writes them all,
/// then flushes; so a burst costs one wake-up and one write, and a quiet log is never
/// more than [`GATHER`] behind.
fn write_lines(rx: &Receiver<Option<Vec<u8>>>, writer: Box<dyn Write + Send>) {
    let mut out = BufWriter::with_capacity(64 * 1024, writer);
    let write = |out: &mut BufWriter<_>, line: &[u8]| {
        let result = out.write_all(line).and_then(|()| out.write_all(b"\n"));
        if let Err(e) = result {
            tracing::error!(error = %e, "failed to write the audit log");
        }
    };
    while let Ok(Some(line)) = rx.recv() {
        write(&mut out, &line);
        std::thread::sleep(GATHER);
        let mut closed = false;
        loop {
            match rx.try_recv() {
                Ok(Some(line)) => write(&mut out, &line),
                Ok(None) | Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        if let Err(e) = out.flush() {
            tracing::error!(error = %e, "failed to write the audit log");
        }
        if closed {
            break;
        }
    }
    let _ = out.flush();
}

/// One audit line.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    time: Rfc3339,
    endpoint: &'static str,
    uid: &'a str,
    operation: &'a kube_core::admission::Operation,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    policy: &'a str,
    allowed: bool,
    outcome: &'static str,
    dry_run: bool,
    changes: &'a [Change],
    warnings: &'a [String],
    message: Option<&'a str>,
}

impl<'a> Record<'a> {
    /// The record of a decision.
    pub(crate) fn new(
        endpoint: Endpoint,
        policy: &'a str,
        request: &'a Request,
        decision: &'a Decision,
    ) -> Self {
        Record {
            time: Rfc3339(SystemTime::now()),
            endpoint: endpoint.as_str(),
            uid: &request.uid,
            operation: &request.operation,
            kind: &request.kind.kind,
            namespace: request.namespace.as_deref(),
            name: object_name(request),
            policy,
            allowed: decision.allowed(),
            outcome: decision.outcome.as_str(),
            dry_run: request.dry_run,
            changes: &decision.changes,
            warnings: &decision.warnings,
            message: decision.message.as_deref(),
        }
    }
}

impl Record<'_> {
    /// Appends the line (without its newline) to `out`. Written by hand, as
    /// `review::respond` writes the answer: the member names and punctuation are fixed
    /// text, and only what comes from the request and the decision is written as JSON
    /// (strings escaped, values compact: [`crate::value`]'s writer, serde_json's bytes).
    /// Through `#[derive(Serialize)]` the line cost twice as much, most of it escaping
    /// the fixed member names.
    pub(crate) fn write(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        use std::io::Write as _;

        let io = serde_json::Error::io;
        write!(out, r#"{{"time":"{}","endpoint":"#, self.time).map_err(io)?;
        write_str(out, self.endpoint);
        out.extend_from_slice(br#","uid":"#);
        write_str(out, self.uid);
        out.extend_from_slice(br#","operation":"#);
        serde_json::to_writer(&mut *out, self.operation)?;
        out.extend_from_slice(br#","kind":"#);
        write_str(out, self.kind);
        out.extend_from_slice(br#","namespace":"#);
        write_opt(out, self.namespace, write_str);
        out.extend_from_slice(br#","name":"#);
        write_str(out, self.name);
        out.extend_from_slice(br#","policy":"#);
        write_str(out, self.policy);
        out.extend_from_slice(if self.allowed {
            br#","allowed":true,"outcome":"#
        } else {
            br#","allowed":false,"outcome":"#
        });
        write_str(out, self.outcome);
        out.extend_from_slice(if self.dry_run {
            br#","dryRun":true,"changes":["#
        } else {
            br#","dryRun":false,"changes":["#
        });
        for (i, c) in self.changes.iter().enumerate() {
            out.extend_from_slice(if i == 0 {
                br#"{"container":"#
            } else {
                br#",{"container":"#
            });
            let container = c.field.container.as_ref().map(|(_, name)| &**name);
            write_opt(out, container, write_str);
            out.extend_from_slice(br#","field":"#);
            write_str(out, &c.field.field);
            out.extend_from_slice(br#","old":"#);
            write_opt(out, c.old.as_ref(), |out, v| v.write_compact(out));
            out.extend_from_slice(br#","new":"#);
            write_opt(out, c.new.as_ref(), |out, v| v.write_compact(out));
            out.extend_from_slice(br#","origin":"#);
            match c.origin.map(|o| (o, o.fixed_text())) {
                // Fixed names need no escaping (a test says so): no formatting per change.
                Some((_, Some((a, b)))) => {
                    out.push(b'"');
                    out.extend_from_slice(a.as_bytes());
                    out.extend_from_slice(b.as_bytes());
                    out.push(b'"');
                }
                Some((origin, None)) => serde_json::to_writer(&mut *out, &Shown(origin))?,
                None => out.extend_from_slice(b"null"),
            }
            out.push(b'}');
        }
        out.extend_from_slice(br#"],"warnings":"#);
        out.push(b'[');
        for (i, w) in self.warnings.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, w);
        }
        out.push(b']');
        out.extend_from_slice(br#","message":"#);
        write_opt(out, self.message, write_str);
        out.push(b'}');
        Ok(())
    }
}

/// Appends `value` with `write`, or `null`.
fn write_opt<T>(out: &mut Vec<u8>, value: Option<T>, write: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        Some(v) => write(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// `request.name`, else the object's name, else its `generateName`.
fn object_name(request: &Request) -> &str {
    if !request.name.is_empty() {
        return &request.name;
    }
    // The metadata as received: `/mutate` renders the object in place.
    let meta = request.object.as_ref().map(kube_core::Resource::meta);
    meta.and_then(|m| m.name.as_deref().or(m.generate_name.as_deref()))
        .unwrap_or("")
}

/// A time as `2025-01-02T03:04:05.678Z`, serialized without an intermediate `String`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rfc3339(SystemTime);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            d.subsec_millis()
        )
    }
}

/// A value serialized as its `Display` text, written without an intermediate `String`.
#[derive(Debug)]
struct Shown<T>(T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The audit line writes an origin's fixed text as it is: every one is what
    /// serde_json writes for its `Display` text.
    #[test]
    fn fixed_origin_names_need_no_escaping() {
        use crate::{
            merge::{Layer, Origin, Scope},
            policy::Role,
        };
        let scopes = [Scope::Pod, Scope::Containers]
            .into_iter()
            .chain(Role::ALL.map(Scope::Role));
        let layers = [
            Layer::Default,
            Layer::RoleDefault,
            Layer::Job,
            Layer::Enforced,
            Layer::RoleEnforced,
        ];
        let origins = scopes
            .flat_map(|scope| layers.map(|layer| Origin::new(layer, scope)))
            .chain([Origin::WorkdirInit, Origin::ForcedUser]);
        for origin in origins {
            let (a, b) = origin.fixed_text().expect("not an exception");
            assert_eq!(
                serde_json::to_string(&origin.to_string()).unwrap(),
                format!("\"{a}{b}\""),
                "{origin:?}"
            );
        }
        assert_eq!(Origin::Exception("x").fixed_text(), None);
    }

    fn rfc3339(t: SystemTime) -> String {
        Rfc3339(t).to_string()
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // leap day 2000
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_787_045);
        assert_eq!(rfc3339(t), "2025-01-02T03:04:05.000Z");
    }

    /// The line, byte for byte: every member in order, `null`s, an exception's quoted
    /// name, a container name and a message that need escaping.
    #[test]
    fn lines_are_written_exactly() {
        use std::{borrow::Cow, sync::Arc};

        use crate::json;
        use kube_core::admission::Operation;

        use crate::merge::{FieldRef, Layer, List, Origin, Scope};

        let change = |container: Option<&str>, field: &'static str, old, new, origin| Change {
            field: FieldRef {
                container: container.map(|c| (List::Containers, Arc::from(c))),
                field: Cow::Borrowed(field),
            },
            old,
            new,
            origin,
        };
        let changes = [
            change(
                None,
                "runAsUser",
                None,
                Some(json!(1000)),
                Some(Origin::new(Layer::Default, Scope::Pod)),
            ),
            change(
                Some("b\"q"),
                "capabilities.drop",
                Some(json!(["NET_RAW"])),
                Some(json!(["ALL", "NET_RAW"])),
                Some(Origin::Exception("dind")),
            ),
            change(Some("svc"), "runAsUser", Some(json!(0)), None, None),
        ];
        let warnings = ["w1".to_string(), "tab\t".to_string()];
        let record = Record {
            time: Rfc3339(UNIX_EPOCH + Duration::from_millis(1_735_787_045_678)),
            endpoint: "validate",
            uid: "u-1",
            operation: &Operation::Update,
            kind: "Pod",
            namespace: None,
            name: "job",
            policy: "p",
            allowed: false,
            outcome: "denied",
            dry_run: true,
            changes: &changes,
            warnings: &warnings,
            message: Some("line\nnext \"x\""),
        };
        let mut line = Vec::new();
        record.write(&mut line).unwrap();
        let line = String::from_utf8(line).unwrap();
        assert_eq!(
            line,
            r#"{"time":"2025-01-02T03:04:05.678Z","endpoint":"validate","uid":"u-1","operation":"UPDATE","kind":"Pod","namespace":null,"name":"job","policy":"p","allowed":false,"outcome":"denied","dryRun":true,"changes":[{"container":null,"field":"runAsUser","old":null,"new":1000,"origin":"pod.default"},{"container":"b\"q","field":"capabilities.drop","old":["NET_RAW"],"new":["ALL","NET_RAW"],"origin":"exception \"dind\""},{"container":"svc","field":"runAsUser","old":0,"new":null,"origin":null}],"warnings":["w1","tab\t"],"message":"line\nnext \"x\""}"#
        );
        // No change, the other booleans, a namespace.
        let record = Record {
            namespace: Some("ci"),
            allowed: true,
            outcome: "allowed",
            dry_run: false,
            changes: &[],
            warnings: &[],
            message: None,
            ..record
        };
        let mut line = Vec::new();
        record.write(&mut line).unwrap();
        let value: crate::value::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["namespace"], "ci");
        assert_eq!(value["allowed"], true);
        assert_eq!(value["dryRun"], false);
        assert_eq!(value["changes"], json!([]));
        assert_eq!(value["warnings"], json!([]));
        assert_eq!(value["message"], crate::value::Value::Null);
    }

    #[test]
    fn lines_reach_the_writer_and_close_flushes() {
        let path = tempfile::NamedTempFile::new().unwrap();
        let audit = Audit::open(&AuditSink::File(path.path().into())).unwrap();
        assert!(audit.write("{\"a\":1}".into()));
        assert!(audit.write("{\"b\":2}".into()));
        audit.close();
        assert!(audit.write("late".into()));
        let text = std::fs::read_to_string(path.path()).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n");
    }
}
