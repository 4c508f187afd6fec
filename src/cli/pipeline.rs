//! Read, parse and judge documents on every core, with results in input order and only
//! a bounded number of jobs in flight: what `check` and `audit` run on.
//!
//! One thread reads: small files go to the workers whole, 16 to a job (a worker reads,
//! parses and judges them in order), stdin and large files are streamed ([`ciguard::stream`]) and their
//! documents go to the workers in batches. The calling thread takes the results back in
//! input order. At most [`WINDOW`] jobs are between the reader and the calling thread,
//! so memory holds at most that many files' or batches' documents and results, however
//! many inputs there are. The first error in input order stops the run.

use std::{
    collections::BTreeMap,
    sync::{Condvar, Mutex, mpsc},
};

use anyhow::anyhow;
use ciguard::{
    stream,
    workload::{self, Document, Input},
};

/// Jobs between the reader and the calling thread, at most.
const WINDOW: u64 = 32;
/// Documents per job when an input is streamed.
const BATCH: usize = 32;
/// Files larger than this are streamed by the reader rather than read whole by a worker.
const LARGE_FILE: u64 = 4 << 20;
/// Small files per job: one job per file costs a few thread wake-ups each, which is
/// more than reading a small file.
const FILES: usize = 16;

enum Job {
    /// Read, parse and judge these files, in order.
    Files(Vec<Input>),
    /// Judge these documents (of a streamed input).
    Docs(Vec<Document>),
    /// Reading a streamed input failed here.
    Failed(anyhow::Error),
}

/// What each job gives back: how many documents it held, the results of those judged,
/// and the error that stopped it, if one did (after those results, in input order).
type Done<R> = (usize, Vec<R>, anyhow::Result<()>);

/// The window: the next job the calling thread waits for, and whether the run stops.
#[derive(Default)]
struct Window {
    next: Mutex<(u64, bool)>,
    moved: Condvar,
}

impl Window {
    /// Waits until job `seq` may start; `false` when the run stops.
    fn admit(&self, seq: u64) -> bool {
        let Ok(mut state) = self.next.lock() else {
            return false;
        };
        while seq >= state.0 + WINDOW && !state.1 {
            state = match self.moved.wait(state) {
                Ok(s) => s,
                Err(_) => return false,
            };
        }
        !state.1
    }

    fn advance(&self, next: u64) {
        if let Ok(mut state) = self.next.lock() {
            state.0 = next;
        }
        self.moved.notify_all();
    }

    fn stop(&self) {
        if let Ok(mut state) = self.next.lock() {
            state.1 = true;
        }
        self.moved.notify_all();
    }

    fn stopped(&self) -> bool {
        self.next.lock().map_or(true, |s| s.1)
    }
}

/// Runs `judge` on every document of `inputs` on every core, each worker with its own
/// state from `state`; `emit` gets the results in input order on the calling thread.
/// Returns the workers' states and how many documents were read.
pub fn run<S, R>(
    inputs: Vec<(Input, Option<u64>)>,
    state: impl Fn() -> S + Sync,
    judge: impl Fn(&mut S, Document) -> anyhow::Result<Option<R>> + Sync,
    mut emit: impl FnMut(R) -> anyhow::Result<()>,
) -> anyhow::Result<(Vec<S>, usize)>
where
    S: Send,
    R: Send,
{
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let window = Window::default();
    let (job_tx, job_rx) = mpsc::channel::<(u64, Job)>();
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<(u64, Done<R>)>();

    std::thread::scope(|scope| {
        let window = &window;
        scope.spawn(move || read(inputs, window, &job_tx));
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (job_rx, done_tx, judge, state) = (&job_rx, done_tx.clone(), &judge, &state);
                scope.spawn(move || {
                    let mut s = state();
                    loop {
                        let next = match job_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => break,
                        };
                        let Ok((seq, job)) = next else { break };
                        let done = if window.stopped() {
                            (0, Vec::new(), Ok(()))
                        } else {
                            // A panic answers its job, so that the calling thread is not
                            // left waiting for it.
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                work(&mut s, job, judge)
                            }))
                            .unwrap_or_else(|_| (0, Vec::new(), Err(anyhow!("a worker thread failed"))))
                        };
                        if done_tx.send((seq, done)).is_err() {
                            break;
                        }
                    }
                    s
                })
            })
            .collect();
        drop(done_tx);

        let collected = collect(&done_rx, window, &mut emit);
        window.stop();
        drop(done_rx);
        let mut states = Vec::with_capacity(threads);
        for w in workers {
            states.push(w.join().map_err(|_| anyhow!("a worker thread failed"))?);
        }
        Ok((states, collected?))
    })
}

/// The reader: numbers the jobs in input order and waits for room in the window.
fn read(inputs: Vec<(Input, Option<u64>)>, window: &Window, jobs: &mpsc::Sender<(u64, Job)>) {
    let mut seq = 0u64;
    let mut send = |job: Job| -> bool {
        if !window.admit(seq) || jobs.send((seq, job)).is_err() {
            return false;
        }
        seq += 1;
        true
    };
    let mut files = Vec::with_capacity(FILES);
    for (input, size) in inputs {
        // The size is the walk's (no second look); a file it could not look at is read
        // by a worker, which reports why.
        let streamed = match &input {
            Input::Stdin => true,
            Input::File(_) => size.is_some_and(|n| n > LARGE_FILE),
        };
        if !streamed {
            files.push(input);
            if files.len() == FILES && !send(Job::Files(std::mem::take(&mut files))) {
                return;
            }
            continue;
        }
        if !files.is_empty() && !send(Job::Files(std::mem::take(&mut files))) {
            return;
        }
        let mut batch = Vec::with_capacity(BATCH);
        let mut open = true;
        let read = stream::stream_input(&input, &mut |doc| {
            batch.push(doc);
            if batch.len() == BATCH {
                open = send(Job::Docs(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH),
                )));
            }
            open
        });
        if !open {
            return;
        }
        if !batch.is_empty() && !send(Job::Docs(batch)) {
            return;
        }
        if let Err(e) = read {
            send(Job::Failed(e.into()));
            return;
        }
    }
    if !files.is_empty() {
        send(Job::Files(files));
    }
}

fn work<S, R>(
    state: &mut S,
    job: Job,
    judge: &(impl Fn(&mut S, Document) -> anyhow::Result<Option<R>> + Sync),
) -> Done<R> {
    let (mut n, mut out) = (0, Vec::new());
    let mut judge_all = |docs: Vec<Document>| -> anyhow::Result<()> {
        n += docs.len();
        for doc in docs {
            if let Some(r) = judge(state, doc)? {
                out.push(r);
            }
        }
        Ok(())
    };
    let result = match job {
        Job::Files(inputs) => inputs
            .iter()
            .try_for_each(|input| judge_all(workload::read_input(input)?)),
        Job::Docs(docs) => judge_all(docs),
        Job::Failed(e) => Err(e),
    };
    (n, out, result)
}

/// Takes the results back in input order and hands them to `emit`; returns how many
/// documents there were, or the first error in input order.
fn collect<R>(
    done: &mpsc::Receiver<(u64, Done<R>)>,
    window: &Window,
    emit: &mut impl FnMut(R) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let mut early: BTreeMap<u64, Done<R>> = BTreeMap::new();
    let (mut next, mut documents) = (0u64, 0usize);
    for (seq, result) in done {
        early.insert(seq, result);
        while let Some(result) = early.remove(&next) {
            let (n, results, stop) = result;
            documents += n;
            for r in results {
                emit(r)?;
            }
            stop?;
            next += 1;
            window.advance(next);
        }
    }
    Ok(documents)
}
