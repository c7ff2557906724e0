//! Runs system tests side by side: a fixed number of slots, at most one Bochs at a time.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::cases::SystemTest;
use crate::judge::{EmulatorKind, Outcome};
use crate::runner::{self, RunSpec};

/// A test with the image it boots.
#[derive(Debug, Clone)]
pub struct Job {
    pub test: SystemTest,
    pub iso: PathBuf,
}

/// What became of one test.
#[derive(Debug)]
pub struct TestResult {
    pub name: &'static str,
    /// `Err(reason)` if the test failed.
    pub result: Result<(), String>,
    /// The run, if the emulator could be started at all.
    pub outcome: Option<Outcome>,
    pub duration: Duration,
}

impl TestResult {
    pub fn passed(&self) -> bool {
        self.result.is_ok()
    }
}

/// Boots one test's image under `base/<name>/` and applies its check.
pub fn run_one(job: &Job, base: &Path) -> TestResult {
    let start = Instant::now();
    let work_dir = base.join(job.test.name);
    let spec = RunSpec {
        emulator: &job.test.emulator,
        iso: &job.iso,
        work_dir: &work_dir,
        timeout: Some(job.test.emulator.default_timeout()),
        echo: false,
        prepare: job.test.prepare,
    };
    let (result, outcome) = match runner::run_driven(&spec, job.test.drive) {
        Ok((outcome, driven)) => (driven.and_then(|()| (job.test.check)(&outcome)), Some(outcome)),
        Err(e) => (Err(format!("could not run the emulator: {e}")), None),
    };
    TestResult {
        name: job.test.name,
        result,
        duration: outcome.as_ref().map_or(start.elapsed(), |o| o.duration),
        outcome,
    }
}

struct Queue {
    pending: Vec<Job>,
    bochs_running: usize,
}

/// Runs every job, `slots` at a time (Bochs alone or next to a QEMU), calling
/// `report` as each one finishes (one at a time); returns results in job order.
pub fn run_all(
    jobs: Vec<Job>,
    base: &Path,
    slots: usize,
    report: &(dyn Fn(&TestResult) + Sync),
) -> Vec<TestResult> {
    let order: Vec<&'static str> = jobs.iter().map(|j| j.test.name).collect();
    // Start the slowest (Bochs) first so that the QEMU runs fill the other slot.
    let mut pending = jobs;
    pending.sort_by_key(|j| j.test.emulator.kind() != EmulatorKind::Bochs);
    pending.reverse(); // Workers pop from the end.
    let queue = Mutex::new(Queue { pending, bochs_running: 0 });
    let changed = Condvar::new();
    let results = Mutex::new(Vec::new());
    let printing = Mutex::new(());

    thread::scope(|s| {
        for _ in 0..slots.max(1) {
            s.spawn(|| {
                while let Some(job) = next_job(&queue, &changed) {
                    let result = run_one(&job, base);
                    {
                        let _guard = printing.lock().unwrap_or_else(PoisonError::into_inner);
                        report(&result);
                    }
                    results.lock().unwrap_or_else(PoisonError::into_inner).push(result);
                    let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
                    if job.test.emulator.kind() == EmulatorKind::Bochs {
                        q.bochs_running -= 1;
                    }
                    changed.notify_all();
                }
            });
        }
    });

    let mut results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    results.sort_by_key(|r| order.iter().position(|&n| n == r.name));
    results
}

/// Takes the next job that may start now, waiting while only Bochs jobs are
/// left and a Bochs is running; `None` when nothing is left.
fn next_job(queue: &Mutex<Queue>, changed: &Condvar) -> Option<Job> {
    let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if q.pending.is_empty() {
            return None;
        }
        let bochs_busy = q.bochs_running > 0;
        let pick =
            q.pending.iter().rposition(|j| !(bochs_busy && j.test.emulator.kind() == EmulatorKind::Bochs));
        if let Some(i) = pick {
            let job = q.pending.remove(i);
            if job.test.emulator.kind() == EmulatorKind::Bochs {
                q.bochs_running += 1;
            }
            return Some(job);
        }
        q = changed.wait(q).unwrap_or_else(PoisonError::into_inner);
    }
}
