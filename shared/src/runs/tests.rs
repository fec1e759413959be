use super::*;
use serde_json::json;

fn status(
    kind: RunKind,
    planning_done: bool,
    planned: u64,
    queued: u64,
    done: u64,
    failed: u64,
    abort: bool,
) -> RunStatus {
    RunStatus {
        run_id: 1,
        kind,
        state: RunState::Running,
        planning_done,
        planned,
        abort_reason: abort.then(|| "token revoked".to_string()),
        queued,
        done,
        failed,
        indexed: 0,
        skipped: 0,
        deleted: 0,
        errors: 0,
        api_calls: 0,
        retries: 0,
    }
}

#[test]
fn completeness_and_deletion_table() {
    use RunKind::*;
    // (status, complete, may delete)
    let cases = [
        (status(Full, false, 0, 0, 0, 0, false), false, false),
        (status(Full, false, 3, 0, 3, 0, false), false, false),
        (status(Full, true, 3, 1, 2, 0, false), false, false),
        (status(Full, true, 3, 0, 3, 0, false), true, true),
        (status(Full, true, 3, 0, 5, 0, false), true, true),
        (status(Full, true, 3, 0, 2, 1, false), true, false),
        (status(Full, true, 3, 0, 3, 0, true), true, false),
        (status(Full, true, 4, 0, 3, 0, false), false, false),
        (status(Full, true, 0, 0, 0, 0, false), true, true),
        (status(Incremental, true, 3, 0, 3, 0, false), true, false),
        (status(Webhook, true, 1, 0, 1, 0, false), true, false),
    ];
    for (i, (s, complete, delete)) in cases.iter().enumerate() {
        assert_eq!(is_complete(s), *complete, "case {i}: {s:?}");
        assert_eq!(may_delete(s), *delete, "case {i}: {s:?}");
    }
    let closed_failed = RunStatus { state: RunState::Failed, ..status(Full, true, 1, 0, 1, 0, false) };
    assert!(is_complete(&closed_failed) && !may_delete(&closed_failed));
}

#[test]
fn parts_before_requires_every_earlier_segment() {
    let parts = |segs: &[u32]| segs.iter().map(|s| (*s, format!("t{s}"))).collect::<Vec<_>>();
    assert_eq!(parts_before(parts(&[0, 1, 2]), 3), Ok(vec!["t0".into(), "t1".into(), "t2".into()]));
    assert_eq!(parts_before(parts(&[0, 1, 2, 3]), 2), Ok(vec!["t0".into(), "t1".into()]));
    assert_eq!(parts_before(parts(&[0, 2]), 3), Err(vec![1]));
    assert_eq!(parts_before(parts(&[]), 2), Err(vec![0, 1]));
    assert_eq!(parts_before(parts(&[]), 0), Ok(vec![]));
}

#[test]
fn a_run_is_a_zombie_only_past_its_lease() {
    let leases = Leases { planning: std::time::Duration::from_secs(60), running: std::time::Duration::from_secs(300) };
    let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut run: RunRecord = serde_json::from_value(json!({
        "id": 5, "kind": "full", "state": "planning", "started_at": "2026-01-01T00:00:00Z"
    }))
    .unwrap();
    let at = |secs: i64| start + chrono::Duration::seconds(secs);
    // Recorded before leases: counted from the start.
    assert_eq!(zombie_reason(&run, &leases, at(60)), None);
    assert!(zombie_reason(&run, &leases, at(61)).unwrap().contains("planner stopped before planning finished"));
    run.state = RunState::Running;
    run.renewed_at = Some(at(100));
    run.lease_until = Some(at(400));
    assert_eq!(zombie_reason(&run, &leases, at(400)), None);
    assert_eq!(
        zombie_reason(&run, &leases, at(401)).unwrap(),
        "no finalize check for 301 s (its finalize chain is lost, see the finalize DLQ)"
    );
    run.state = RunState::Failed;
    assert_eq!(zombie_reason(&run, &leases, at(10_000)), None);
}

#[test]
fn run_ids_are_monotonic() {
    assert_eq!(next_run_id(1000, None), 1000);
    assert_eq!(next_run_id(1000, Some(999)), 1000);
    assert_eq!(next_run_id(1000, Some(1000)), 1001);
    assert_eq!(next_run_id(1000, Some(5000)), 5001);
}

#[test]
fn run_record_round_trips_and_tolerates_missing_fields() {
    let record: RunRecord = serde_json::from_value(json!({
        "id": 5, "kind": "full", "state": "running", "started_at": "2026-01-01T00:00:00Z"
    }))
    .unwrap();
    assert_eq!(record.counts, RunCounts::default());
    assert!(!record.planning_done && record.errors.is_empty());
    let back: RunRecord = serde_json::from_value(serde_json::to_value(&record).unwrap()).unwrap();
    assert_eq!(back, record);
    assert_eq!(serde_json::to_value(RunState::Completed).unwrap(), "completed");
}

#[test]
fn long_errors_are_cut_on_char_boundaries() {
    assert_eq!(truncate("abc", 5), "abc");
    assert_eq!(truncate("ééé", 3), "é…");
}

#[test]
fn page_tasks_name_their_page_and_segment() {
    let page = Task::Page { page_id: "p".into(), page: None, path: vec![] };
    assert_eq!(task_page(&page), Some(("p", 0)));
    assert_eq!(task_page(&Task::Users), None);
}
