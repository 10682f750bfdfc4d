//! The soak's history checker, fed hand-made histories: it must pass a
//! clean one and report each broken promise with the operations that show it.

mod support;

use support::history::{Action, Op, Rules, SOURCE, check};

fn rules() -> Rules {
    Rules {
        bound_ms: 100.0,
        call_bound_ms: 1_000.0,
        error_kinds: vec!["unavailable".to_owned(), "timeout".to_owned()],
    }
}

fn op(start: f64, end: f64, actor: &str, id: &str, action: Action) -> Op {
    Op {
        start,
        end,
        actor: actor.to_owned(),
        id: id.to_owned(),
        action,
    }
}

fn write(start: f64, actor: &str, id: &str, hash: u64) -> Op {
    op(start, start + 2.0, actor, id, Action::Write(hash, Ok(())))
}

fn read(start: f64, actor: &str, id: &str, seen: Option<u64>) -> Op {
    op(start, start + 1.0, actor, id, Action::Read(Ok(seen)))
}

fn erase(start: f64, actor: &str, id: &str) -> Op {
    op(start, start + 2.0, actor, id, Action::Erase(Ok(())))
}

fn kinds(history: &[Op]) -> Vec<&'static str> {
    check(history, &rules())
        .violations
        .iter()
        .map(|v| v.kind)
        .collect()
}

/// Writes, overwrites, erasures and reads that each keep the promises,
/// including a stale read inside the bound and ambiguous failures.
fn clean() -> Vec<Op> {
    vec![
        write(0.0, "i0", "a:1", 1),
        read(10.0, "i1", "a:1", Some(1)),
        write(20.0, "foreign", "a:1", 2),
        // Within the bound after the overwrite's ack (22): allowed.
        read(50.0, "i2", "a:1", Some(1)),
        read(200.0, "i2", "a:1", Some(2)),
        erase(300.0, "i1", "a:1"),
        read(350.0, "i0", "a:1", Some(2)),
        read(500.0, "i0", "a:1", None),
        // A timed-out write may land late: reading it later is no violation.
        op(
            600.0,
            800.0,
            "i0",
            "a:2",
            Action::Write(7, Err("timeout".to_owned())),
        ),
        erase(900.0, "i1", "a:2"),
        read(1_500.0, "i2", "a:2", Some(7)),
        // A write concurrent with an erasure: either order is fine.
        write(2_000.0, "i0", "a:3", 9),
        op(2_001.0, 2_010.0, "i1", "a:3", Action::Erase(Ok(()))),
        read(3_000.0, "i2", "a:3", None),
        op(
            3_100.0,
            3_300.0,
            "i2",
            "a:3",
            Action::Read(Err("unavailable".to_owned())),
        ),
        op(3_200.0, 3_210.0, "i0", "", Action::Snapshot(Ok(200))),
        op(3_300.0, 3_301.0, "i0", "", Action::Snapshot(Ok(304))),
    ]
}

#[test]
fn a_clean_history_passes_with_its_figures() {
    let history = clean();
    let report = check(&history, &rules());
    assert!(report.violations.is_empty(), "{}", report.summary(&rules()));
    assert_eq!(report.ops_by_kind["read"], 8);
    assert_eq!(report.ops_by_kind["snapshot"], 2);
    assert_eq!(report.errors_by_kind["timeout"], 1);
    assert_eq!(report.errors_by_kind["unavailable"], 1);
    // The read at 350 saw the value erased at 300..302: 48 ms after the ack.
    assert_eq!(report.worst_staleness_ms, Some(48.0));
}

#[test]
fn an_erased_value_read_past_the_bound_is_a_resurrection() {
    let mut history = clean();
    history.push(read(3_500.0, "i1", "a:1", Some(2)));
    let report = check(&history, &rules());
    assert_eq!(kinds(&history), ["resurrected"]);
    let shown = &report.violations[0].ops;
    assert_eq!(shown.len(), 3, "the read, the write it saw, the erasure");
    assert_eq!(shown[0].start, 3_500.0);
    assert_eq!(shown[2].action, Action::Erase(Ok(())));
}

#[test]
fn an_older_value_read_past_the_bound_is_stale() {
    let mut history = clean();
    history.push(write(4_000.0, "i0", "a:4", 10));
    history.push(write(4_100.0, "foreign", "a:4", 11));
    history.push(read(4_150.0, "i1", "a:4", Some(10)));
    assert!(
        kinds(&history).is_empty(),
        "48 ms after the ack: within the bound"
    );
    history.push(read(4_250.0, "i1", "a:4", Some(10)));
    assert_eq!(kinds(&history), ["stale"]);
}

#[test]
fn an_acknowledged_write_missing_later_is_lost() {
    let mut history = clean();
    history.push(write(5_000.0, "i2", "a:5", 12));
    history.push(read(5_050.0, "i0", "a:5", None));
    assert!(
        kinds(&history).is_empty(),
        "within the bound, absent may be read"
    );
    history.push(read(5_500.0, "i0", "a:5", None));
    assert_eq!(kinds(&history), ["lost"]);
}

#[test]
fn a_data_loss_excuses_earlier_writes_but_not_what_it_erased() {
    let mut history = clean();
    history.push(write(6_000.0, "i2", "a:6", 13));
    history.push(op(6_100.0, 6_200.0, "fault", "", Action::DataLoss));
    history.push(read(7_000.0, "i0", "a:6", None));
    assert!(kinds(&history).is_empty());
    history.push(read(7_100.0, "i1", "a:6", Some(13)));
    assert_eq!(kinds(&history), ["resurrected"]);
}

#[test]
fn a_call_over_its_bound_is_a_hang() {
    let mut history = clean();
    history.push(op(8_000.0, 9_500.0, "i0", "a:1", Action::Read(Ok(None))));
    assert_eq!(kinds(&history), ["hang"]);
}

#[test]
fn an_undocumented_error_and_a_failed_snapshot_are_reported() {
    let mut history = clean();
    history.push(op(
        8_000.0,
        8_001.0,
        "i0",
        "a:1",
        Action::Read(Err("internal".to_owned())),
    ));
    history.push(op(8_000.0, 8_001.0, "i1", "", Action::Snapshot(Ok(503))));
    history.push(op(
        8_000.0,
        8_001.0,
        "i2",
        "",
        Action::Snapshot(Err("timeout".to_owned())),
    ));
    assert_eq!(kinds(&history), ["untyped-error", "snapshot", "snapshot"]);
}

#[test]
fn a_value_nobody_wrote_is_reported() {
    let mut history = clean();
    history.push(read(8_000.0, "i0", "a:1", Some(999)));
    // Written only after the read had ended.
    history.push(read(8_100.0, "i0", "a:7", Some(20)));
    history.push(write(8_500.0, "i1", "a:7", 20));
    assert_eq!(kinds(&history), ["unknown-value", "unknown-value"]);
}

#[test]
fn a_source_value_is_never_stale_but_does_not_stand_in_for_a_write() {
    let mut history = clean();
    history.push(read(8_000.0, "i0", "a:1", Some(SOURCE)));
    assert!(
        kinds(&history).is_empty(),
        "a loader may answer after an erasure"
    );
    history.push(write(9_000.0, "i1", "a:8", 30));
    history.push(read(9_500.0, "i0", "a:8", Some(SOURCE)));
    assert_eq!(kinds(&history), ["lost"]);
}
