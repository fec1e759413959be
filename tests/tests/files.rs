//! File content end to end (issue 5): the `edge` workspace's real files (PDF, DOCX, TXT, HTML,
//! CSV, an external URL, an oversize file, a corrupt PDF, a zip-bomb DOCX, deeply nested HTML)
//! are downloaded by the workers, their text lands in the block's and the page's `body`, and no
//! bad file ever fails the run. Needs `make up` (search engine and LocalStack).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use e2e::notion_emulator::WorkspaceKind;
use e2e::Stack;
use reqwest::Method;
use serde_json::{json, Map, Value};
use shared::runs::{RunRecord, RunState};
use shared::task::{FinalizeMessage, RunKind, Task, TaskMessage};

/// Peak-RSS figures are process-wide: the tests of this file run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn text(doc: &Map<String, Value>, field: &str) -> String {
    doc.get(field).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn attachment(doc: &Map<String, Value>) -> Map<String, Value> {
    doc.get("attachment").and_then(Value::as_object).cloned().unwrap_or_default()
}

/// `VmHWM` (peak resident set) or `VmRSS` of this process, in KiB.
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak RSS to the current RSS (Linux ≥ 4.0); false when not allowed.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

/// Ids of the documents whose `body` holds `phrase`.
async fn phrase_hits(stack: &Stack, phrase: &str) -> Vec<String> {
    let reply = stack
        .ctx
        .store
        .search(&json!({"size": 100, "_source": false, "query": {"match_phrase": {"body": phrase}}}))
        .await
        .unwrap();
    reply["hits"]["hits"].as_array().unwrap().iter().map(|h| h["_id"].as_str().unwrap().to_string()).collect()
}

/// The emulator's files by name.
async fn files_by_name(stack: &Stack) -> HashMap<String, Value> {
    let files = stack.control(Method::GET, "files", None).await.unwrap();
    files["files"].as_array().unwrap().iter().map(|f| (f["name"].as_str().unwrap().to_string(), f.clone())).collect()
}

fn block_ids(file: &Value) -> Vec<String> {
    file["block_ids"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_string()).collect()
}

/// The error samples of the run's tasks (file failures are counted and sampled there).
async fn task_error_samples(stack: &Stack, run: &RunRecord, page_ids: &[String]) -> Vec<String> {
    let mut out = run.errors.clone();
    for page_id in page_ids {
        if let Some(task) = stack.ctx.runs.task(run.id, &format!("p:{page_id}")).await.unwrap() {
            out.extend(task.error_samples);
        }
    }
    out
}

/// Downloads `name` once from the emulator so its lazily built bytes (the zip bomb: 256 MiB of
/// XML deflated) are ready and the emulator's own work stays out of the measured figures.
async fn prewarm(stack: &Stack, file: &Value) -> Vec<u8> {
    let url = file["url"].as_str().unwrap();
    let response = stack.http.get(url).send().await.unwrap();
    assert!(response.status().is_success(), "{url}: {}", response.status());
    response.bytes().await.unwrap().to_vec()
}

/// The page holding the edge workspace's file blocks (all sit on one page).
async fn files_page(stack: &Stack, files: &HashMap<String, Value>) -> String {
    let pdf_block = block_ids(&files["quarterly-report.pdf"])[0].clone();
    let block = stack.ctx.notion.get_block(&pdf_block).await.unwrap();
    let page_id = block["parent"]["page_id"].as_str().expect("file blocks sit on a page").to_string();
    for file in files.values() {
        for block_id in block_ids(file) {
            let block = stack.ctx.notion.get_block(&block_id).await.unwrap();
            assert_eq!(
                block["parent"]["page_id"].as_str(),
                Some(page_id.as_str()),
                "{}: one page holds every file",
                file["name"]
            );
        }
    }
    page_id
}

/// A full run of just one page, through SQS and the worker, as the planner would queue it.
async fn sync_one_page(stack: &Stack, page_id: &str) -> RunRecord {
    let run = stack.ctx.runs.create_run(RunKind::Full).await.unwrap();
    let page = stack.ctx.notion.get_page(page_id).await.unwrap();
    let task = TaskMessage::new(
        run.id,
        run.kind,
        format!("p:{page_id}"),
        Task::Page { page_id: page_id.to_string(), page: Some(page), path: vec![] },
    );
    stack.ctx.runs.tasks_queued(run.id, std::slice::from_ref(&task)).await.unwrap();
    stack.ctx.queue.send_tasks(std::slice::from_ref(&task)).await.unwrap();
    stack.ctx.runs.planning_done(run.id, 1).await.unwrap();
    stack.ctx.queue.send_finalize(&FinalizeMessage::new(run.id), 1).await.unwrap();
    tokio::time::timeout(Duration::from_secs(300), stack.pump(run.id)).await.expect("run within 5 min").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edge_files_are_searchable_and_bad_files_never_fail_the_run() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::start(WorkspaceKind::Edge, &[]).await.expect("stack (is `make up` running?)");
    let files = files_by_name(&stack).await;
    prewarm(&stack, &files["bomb.docx"]).await;

    let rss_before = proc_status_kib("VmRSS:");
    let hwm_before = proc_status_kib("VmHWM:");
    let reset = reset_peak_rss();
    let started = Instant::now();
    let run = stack.sync("full").await.unwrap();
    let elapsed = started.elapsed();
    let hwm_after = proc_status_kib("VmHWM:");
    let stats = stack.control(Method::GET, "stats", None).await.unwrap();
    println!(
        "edge full sync with files: {:.1} s, {} docs indexed, {} errors; RSS before {}, peak before {}, peak during sync {} (peak reset: {reset}); file downloads {}",
        elapsed.as_secs_f64(),
        run.counts.indexed,
        run.counts.errors,
        mib(rss_before),
        mib(hwm_before),
        mib(hwm_after),
        stats["file_downloads"],
    );
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert_eq!(run.counts.failed, 0, "{run:?}");
    let docs = stack.documents().await.unwrap();

    // Files with a known text: a phrase search finds the block and its page.
    for name in
        ["quarterly-report.pdf", "meeting-notes.docx", "readme.txt", "page.html", "table.csv", "external-notes.txt"]
    {
        let file = files.get(name).unwrap_or_else(|| panic!("emulator has no {name}"));
        assert_eq!(file["expectation"], "extract", "{name}");
        let phrase = file["expected_text"].as_str().unwrap();
        let hits = phrase_hits(&stack, phrase).await;
        let blocks = block_ids(file);
        assert!(!blocks.is_empty(), "{name} is used by a block");
        for block_id in &blocks {
            let doc = docs.get(block_id).unwrap_or_else(|| panic!("block {block_id} ({name}) not indexed"));
            let page_id = text(doc, "page_id");
            assert!(hits.contains(block_id), "search {phrase:?} misses block {block_id} ({name}): {hits:?}");
            assert!(hits.contains(&page_id), "search {phrase:?} misses page {page_id} of {name}: {hits:?}");
            assert!(text(doc, "body").contains(phrase), "body of block {block_id} ({name})");
            let att = attachment(doc);
            assert_eq!(att.get("extracted"), Some(&json!(true)), "{name}: {att:?}");
            if text(doc, "type") == "file" {
                // `pdf` blocks have no `name` in the API: theirs comes from the URL's last segment.
                assert_eq!(att.get("name").and_then(Value::as_str), Some(name), "{name}: {att:?}");
            }
            assert!(att.get("size").and_then(Value::as_u64).unwrap_or(0) > 0, "{name}: {att:?}");
            assert!(att.get("error").is_none(), "{name}: {att:?}");
        }
    }
    assert_eq!(
        files["external-notes.txt"]["external"],
        json!(true),
        "the external file is served from an external URL"
    );

    // Every file block is indexed, whatever happened to its file.
    let mut file_pages: Vec<String> = Vec::new();
    for (name, file) in &files {
        for block_id in block_ids(file) {
            let doc = docs.get(&block_id).unwrap_or_else(|| panic!("block {block_id} ({name}) not indexed"));
            assert!(matches!(text(doc, "type").as_str(), "file" | "pdf"), "{name}");
            assert!(doc.contains_key("attachment"), "{name}: attachment fields");
            file_pages.push(text(doc, "page_id"));
        }
    }
    file_pages.sort();
    file_pages.dedup();
    let samples = task_error_samples(&stack, &run, &file_pages).await;

    // Oversize: no text, the reason on the block and in the run's errors.
    let oversize = &files["huge-export.txt"];
    assert_eq!(oversize["expectation"], "skip_oversize");
    for block_id in block_ids(oversize) {
        let doc = &docs[&block_id];
        let att = attachment(doc);
        assert_eq!(att.get("extracted"), Some(&json!(false)), "{att:?}");
        let error = att.get("error").and_then(Value::as_str).unwrap_or_default();
        assert!(error.contains("larger than"), "oversize error: {error:?}");
        assert!(!text(doc, "body").contains("oversize filler"), "no text from the oversize file");
        assert!(
            samples.iter().any(|e| e.contains(&block_id) && e.contains("larger than")),
            "{block_id} in the errors: {samples:?}"
        );
    }
    assert!(phrase_hits(&stack, "oversize filler line").await.is_empty(), "oversize text indexed");

    // Corrupt PDF: indexed without text, counted, run completed.
    let corrupt = &files["broken.pdf"];
    assert_eq!(corrupt["expectation"], "extraction_error");
    for block_id in block_ids(corrupt) {
        let att = attachment(&docs[&block_id]);
        assert_eq!(att.get("extracted"), Some(&json!(false)), "{att:?}");
        let error = att.get("error").and_then(Value::as_str).unwrap_or_default();
        assert!(!error.is_empty(), "corrupt PDF has an error: {att:?}");
        assert!(samples.iter().any(|e| e.contains(&block_id)), "{block_id} in the errors: {samples:?}");
    }
    let failing = block_ids(oversize).len() + block_ids(corrupt).len();
    assert!(run.counts.errors >= failing as u64, "{} errors counted, {failing} files failed", run.counts.errors);

    // Zip bomb and deep HTML: within budget, their blocks indexed (text or not).
    for name in ["bomb.docx", "deep.html"] {
        let file = &files[name];
        assert_eq!(file["expectation"], "within_budget", "{name}");
        for block_id in block_ids(file) {
            let doc = &docs[&block_id];
            let att = attachment(doc);
            println!("{name}: attachment {att:?}, block body {} bytes", text(doc, "body").len());
            assert!(text(doc, "body").len() <= 2 << 20, "{name}: text is capped");
        }
    }
    // The page's body holds a bounded share of each file's text.
    for page_id in &file_pages {
        let body = text(&docs[page_id], "body");
        println!("page {page_id} with files: body {} bytes", body.len());
        assert!(body.len() <= shared::sync::walk::MAX_PAGE_TEXT, "page body bounded");
    }
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_file_url_is_refreshed_by_re_reading_the_block() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::start(WorkspaceKind::Edge, &[]).await.expect("stack (is `make up` running?)");
    let files = files_by_name(&stack).await;
    // The bomb and the deep HTML are the other test's business: trash them to keep this one short.
    for name in ["bomb.docx", "deep.html"] {
        for block_id in block_ids(&files[name]) {
            stack.control(Method::DELETE, &format!("blocks/{block_id}"), None).await.unwrap();
        }
    }
    // Children lists hand out URLs that are already expired; `GET /v1/blocks/{id}` signs fresh ones.
    stack.control(Method::POST, "config", Some(json!({"list_file_url_ttl_secs": 0}))).await.unwrap();

    // The page that holds the files, synced alone.
    let page_id = files_page(&stack, &files).await;
    let pdf_block = block_ids(&files["quarterly-report.pdf"])[0].clone();
    let listed = stack.ctx.notion.list_children(&page_id, None).await.unwrap();
    let listed_pdf = listed.results.iter().find(|b| b["id"] == pdf_block.as_str()).expect("pdf block listed");
    let url = listed_pdf["pdf"]["file"]["url"].as_str().unwrap();
    let status = stack.http.get(url).send().await.unwrap().status();
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "listed URLs are expired");
    let before = stack.control(Method::POST, "stats/reset", None).await.unwrap();
    assert_eq!(before["files_expired"], 1);

    let run = sync_one_page(&stack, &page_id).await;
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    let stats = stack.control(Method::GET, "stats", None).await.unwrap();
    println!("stats after the refresh run: {stats}");

    let hosted = [
        "quarterly-report.pdf",
        "meeting-notes.docx",
        "readme.txt",
        "page.html",
        "table.csv",
        "huge-export.txt",
        "broken.pdf",
    ];
    let hosted_blocks: usize = hosted.iter().map(|n| block_ids(&files[*n]).len()).sum();
    let re_reads = stats["by_endpoint"]["GET /v1/blocks/{id}"].as_u64().unwrap_or(0);
    assert!(
        re_reads >= hosted_blocks as u64,
        "{re_reads} block re-reads for {hosted_blocks} Notion-hosted files: {stats}"
    );
    let expired = stats["files_expired"].as_u64().unwrap_or(0);
    assert!(expired >= hosted_blocks as u64, "{expired} expired downloads for {hosted_blocks} files: {stats}");

    let docs = stack.documents().await.unwrap();
    for name in
        ["quarterly-report.pdf", "meeting-notes.docx", "readme.txt", "page.html", "table.csv", "external-notes.txt"]
    {
        let phrase = files[name]["expected_text"].as_str().unwrap();
        let hits = phrase_hits(&stack, phrase).await;
        for block_id in block_ids(&files[name]) {
            let att = attachment(&docs[&block_id]);
            assert_eq!(att.get("extracted"), Some(&json!(true)), "{name} extracted after the refresh: {att:?}");
            assert!(hits.contains(&block_id), "{name}: block found");
        }
        assert!(hits.contains(&page_id), "{name}: page found");
    }
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zip_bomb_and_deep_html_stay_within_the_memory_and_time_budget() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::start(WorkspaceKind::Edge, &[]).await.expect("stack (is `make up` running?)");
    let files = files_by_name(&stack).await;
    let page_id = files_page(&stack, &files).await;
    let bomb = prewarm(&stack, &files["bomb.docx"]).await;
    let deep = prewarm(&stack, &files["deep.html"]).await;

    // Each file alone, through the worker's extraction path (default limits, blocking pool + timeout).
    let limits = shared::extract::ExtractLimits::default();
    for (name, bytes) in [("bomb.docx", &bomb), ("deep.html", &deep)] {
        let size = bytes.len();
        let reset = reset_peak_rss();
        let rss_before = proc_status_kib("VmRSS:");
        let started = Instant::now();
        let result = shared::extract::extract_in_background(
            bytes.clone(),
            shared::extract::FileHint::new(Some(name), None),
            limits.clone(),
        )
        .await;
        let elapsed = started.elapsed();
        let peak = proc_status_kib("VmHWM:");
        let summary = match &result {
            Ok(e) => format!("{} text, {} bytes, truncated: {}", e.kind, e.text.len(), e.truncated),
            Err(e) => format!("error: {e}"),
        };
        println!(
            "{name}: {size} bytes downloaded; extraction {:.2} s; RSS before {}, peak {} (peak reset: {reset}); {summary}",
            elapsed.as_secs_f64(),
            mib(rss_before),
            mib(peak),
        );
        assert!(elapsed < limits.timeout + Duration::from_secs(1), "{name}: the timeout bounds extraction");
        if let Ok(extracted) = &result {
            assert!(extracted.text.len() <= limits.max_text_bytes, "{name}: text capped");
        }
    }

    // The page with every file, synced alone.
    let reset = reset_peak_rss();
    let rss_before = proc_status_kib("VmRSS:");
    let started = Instant::now();
    let run = sync_one_page(&stack, &page_id).await;
    let elapsed = started.elapsed();
    let peak = proc_status_kib("VmHWM:");
    println!(
        "files page ({} files) synced alone: {:.1} s; RSS before {}, peak {} (peak reset: {reset}); {} docs, {} errors",
        files.len(),
        elapsed.as_secs_f64(),
        mib(rss_before),
        mib(peak),
        run.counts.indexed,
        run.counts.errors,
    );
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert_eq!(run.counts.failed, 0, "{run:?}");
    let docs = stack.documents().await.unwrap();
    for name in ["bomb.docx", "deep.html"] {
        for block_id in block_ids(&files[name]) {
            let doc = docs.get(&block_id).unwrap_or_else(|| panic!("{name}: block {block_id} indexed"));
            assert!(doc.contains_key("attachment"), "{name}: attachment fields");
            println!("{name}: block attachment {:?}", attachment(doc));
        }
    }
    assert!(docs.contains_key(&page_id), "the page is indexed");
    stack.cleanup().await;
}
