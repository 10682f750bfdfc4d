//! A history of operations on a small fleet, and the checker that judges
//! it (Jepsen style): nothing erased comes back, nothing older is read past
//! the bound, nothing acknowledged is lost, no call hangs, no error is of an
//! unknown kind, and snapshot reads never fail.
//!
//! Every write stores a value unique to that write, so a read's value (its
//! content hash) names the write it came from. Times are milliseconds on one
//! clock, taken before a call is sent (`start`) and after its answer
//! (`end`). A mutation that failed may still have been applied, at any time
//! after it started (a timed-out command can reach Redis later), so only
//! acknowledged mutations order anything. A Redis restart (nothing kept on
//! disk) is recorded as [`Action::DataLoss`]: an acknowledged erasure of
//! every id.

use std::collections::BTreeMap;
use std::fmt;

/// The hash of a value from the source of truth (a loader), which may be
/// read at any time: never stale, but no stand-in for an acknowledged write.
pub const SOURCE: u64 = u64::MAX;

/// The hash of a value the loader answered with itself, live (Redis could
/// not be used, or the key was just erased): a documented fallback that
/// says nothing of what Redis holds, so the checker does not judge it.
pub const FALLBACK: u64 = u64::MAX - 1;

/// What one operation did and how it ended. `Err` holds a typed error kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A read of `id`: the value's hash, or `None` for absent.
    Read(Result<Option<u64>, String>),
    /// A write of `id` with the value of hash `.0`.
    Write(u64, Result<(), String>),
    /// An erasure (delete) of `id`.
    Erase(Result<(), String>),
    /// A snapshot read: the HTTP status, or a transport error.
    Snapshot(Result<u16, String>),
    /// Redis lost everything (restarted without persistence).
    DataLoss,
    /// A fault was injected (for the reader of a history; not judged).
    Fault(String),
}

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Milliseconds since the start of the run, before the call.
    pub start: f64,
    /// After the answer.
    pub end: f64,
    /// Who called: `i0`.., `foreign`, `fault`.
    pub actor: String,
    /// The record (`keyspace:id`); empty for snapshot reads and data loss.
    pub id: String,
    /// What it did.
    pub action: Action,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>10.1} .. {:>10.1}] {:<8} {:<28} {:?}",
            self.start, self.end, self.actor, self.id, self.action
        )
    }
}

/// What the checker holds the history to.
#[derive(Debug, Clone)]
pub struct Rules {
    /// A change acknowledged at `t` is never read by a read that starts
    /// after `t + bound_ms`.
    pub bound_ms: f64,
    /// Longest any call may take.
    pub call_bound_ms: f64,
    /// The documented error kinds.
    pub error_kinds: Vec<String>,
}

/// One broken promise, with the operations that show it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// `resurrected`, `stale`, `lost`, `hang`, `untyped-error`, `snapshot`, `unknown-value`.
    pub kind: &'static str,
    /// The minimal slice of history: the offending read first.
    pub ops: Vec<Op>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "violation: {}", self.kind)?;
        for op in &self.ops {
            writeln!(f, "  {op}")?;
        }
        Ok(())
    }
}

/// The verdict and the figures.
#[derive(Debug, Default)]
pub struct Report {
    /// Broken promises.
    pub violations: Vec<Violation>,
    /// Largest `read.start - ack` over reads that saw a superseded value
    /// (negative: every such read overlapped the change).
    pub worst_staleness_ms: Option<f64>,
    /// Operations by kind (`read`, `write`, ...).
    pub ops_by_kind: BTreeMap<String, u64>,
    /// Failed calls by error kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The longest call.
    pub worst_call_ms: f64,
}

fn kind_name(action: &Action) -> &'static str {
    match action {
        Action::Read(_) => "read",
        Action::Write(..) => "write",
        Action::Erase(_) => "erase",
        Action::Snapshot(_) => "snapshot",
        Action::DataLoss => "data-loss",
        Action::Fault(_) => "fault",
    }
}

fn error_of(action: &Action) -> Option<&str> {
    match action {
        Action::Read(Err(e)) | Action::Write(_, Err(e)) | Action::Erase(Err(e)) => Some(e),
        Action::Snapshot(Err(e)) => Some(e),
        _ => None,
    }
}

/// A change of a record's value: a write, an erasure or a data loss.
fn is_mutation(action: &Action) -> bool {
    matches!(
        action,
        Action::Write(..) | Action::Erase(_) | Action::DataLoss
    )
}

fn acknowledged(action: &Action) -> bool {
    matches!(
        action,
        Action::Write(_, Ok(())) | Action::Erase(Ok(())) | Action::DataLoss
    )
}

/// Checks `history` against `rules`.
pub fn check(history: &[Op], rules: &Rules) -> Report {
    let mut report = Report::default();
    for op in history {
        *report
            .ops_by_kind
            .entry(kind_name(&op.action).to_owned())
            .or_default() += 1;
        if let Some(e) = error_of(&op.action) {
            *report.errors_by_kind.entry(e.to_owned()).or_default() += 1;
            if !rules.error_kinds.iter().any(|k| k == e) {
                report.violation("untyped-error", vec![op.clone()]);
            }
        }
        let judged = !matches!(op.action, Action::DataLoss | Action::Fault(_));
        if judged {
            report.worst_call_ms = report.worst_call_ms.max(op.end - op.start);
        }
        if judged && op.end - op.start > rules.call_bound_ms {
            report.violation("hang", vec![op.clone()]);
        }
        if let Action::Snapshot(result) = &op.action {
            if !matches!(result, Ok(status) if *status < 500) {
                report.violation("snapshot", vec![op.clone()]);
            }
        }
    }
    let losses: Vec<&Op> = history
        .iter()
        .filter(|op| op.action == Action::DataLoss)
        .collect();
    let mut by_id: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history.iter().filter(|op| !op.id.is_empty()) {
        by_id.entry(&op.id).or_default().push(op);
    }
    for ops in by_id.values() {
        let mutations: Vec<&Op> = ops
            .iter()
            .copied()
            .filter(|op| is_mutation(&op.action))
            .chain(losses.iter().copied())
            .collect();
        for read in ops
            .iter()
            .filter(|op| matches!(op.action, Action::Read(Ok(_))))
        {
            let Action::Read(Ok(seen)) = &read.action else {
                continue;
            };
            match *seen {
                Some(FALLBACK) => {}
                Some(hash) if hash != SOURCE => {
                    check_value_read(&mut report, rules, read, hash, &mutations);
                }
                _ => check_absent_read(&mut report, rules, read, &mutations),
            }
        }
    }
    report
}

/// A read saw the value of write `hash`: it must be that write's, and no
/// acknowledged change after that write may be older than the bound.
fn check_value_read(report: &mut Report, rules: &Rules, read: &Op, hash: u64, mutations: &[&Op]) {
    let Some(write) = mutations
        .iter()
        .find(|m| matches!(m.action, Action::Write(h, _) if h == hash))
    else {
        report.violation("unknown-value", vec![read.clone()]);
        return;
    };
    if write.start > read.end {
        report.violation("unknown-value", vec![read.clone(), (*write).clone()]);
        return;
    }
    // A failed write may land any time after it started: nothing supersedes it for sure.
    if !acknowledged(&write.action) {
        return;
    }
    for later in mutations
        .iter()
        .filter(|m| acknowledged(&m.action) && m.start > write.end)
    {
        let staleness = read.start - later.end;
        report.worst_staleness_ms = Some(
            report
                .worst_staleness_ms
                .map_or(staleness, |w| w.max(staleness)),
        );
        if staleness > rules.bound_ms {
            let kind = match later.action {
                Action::Write(..) => "stale",
                _ => "resurrected",
            };
            report.violation(kind, vec![read.clone(), (*write).clone(), (*later).clone()]);
        }
    }
}

/// A read found nothing: no acknowledged write may be the id's last change,
/// older than the bound, with nothing after it that could have removed it.
fn check_absent_read(report: &mut Report, rules: &Rules, read: &Op, mutations: &[&Op]) {
    for write in mutations.iter().filter(|m| {
        matches!(m.action, Action::Write(_, Ok(()))) && m.end + rules.bound_ms < read.start
    }) {
        let excused = mutations.iter().any(|m| {
            !std::ptr::eq(*m, *write)
                && m.start < read.end
                && !(acknowledged(&m.action) && m.end < write.start)
        });
        if !excused {
            report.violation("lost", vec![read.clone(), (*write).clone()]);
        }
    }
}

impl Report {
    fn violation(&mut self, kind: &'static str, ops: Vec<Op>) {
        self.violations.push(Violation { kind, ops });
    }

    /// The figures and every violation, for the test's output.
    pub fn summary(&self, rules: &Rules) -> String {
        let mut text = format!(
            "operations: {:?}\nerrors by kind: {:?}\nviolations: {}\nlongest call vs bound: {:.1} ms / {} ms\nworst staleness vs bound: {} ms / {} ms\n",
            self.ops_by_kind,
            self.errors_by_kind,
            self.violations.len(),
            self.worst_call_ms,
            rules.call_bound_ms,
            self.worst_staleness_ms
                .map_or_else(|| "none seen".to_owned(), |w| format!("{w:.1}")),
            rules.bound_ms
        );
        for v in self.violations.iter().take(20) {
            text.push_str(&v.to_string());
        }
        text
    }
}
