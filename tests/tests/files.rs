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
        .search
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
    let run_id = stack.plan_page_run(page_id).await.unwrap();
    tokio::time::timeout(Duration::from_secs(300), stack.pump(run_id)).await.expect("run within 5 min").unwrap()
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

// ---------- poison files and slow hosts (review H5) ----------

#[path = "../../shared/tests/support/pdf.rs"]
mod pdf_fixtures;

/// Serves `files` (path, delay before answering, body) over HTTP/1.1 on 127.0.0.1, one thread per connection.
fn serve_files(files: Vec<(&'static str, Duration, Vec<u8>)>) -> std::net::SocketAddr {
    serve_files_unless(files, Default::default())
}

/// [`serve_files`], dropping every connection unanswered while `down` is set.
fn serve_files_unless(
    files: Vec<(&'static str, Duration, Vec<u8>)>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let files = std::sync::Arc::new(files);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            if down.load(std::sync::atomic::Ordering::Relaxed) {
                drop(conn);
                continue;
            }
            let files = files.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
                let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
                let Some((_, delay, body)) = files.iter().find(|(p, _, _)| *p == path) else {
                    let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    return;
                };
                std::thread::sleep(*delay);
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(body));
            });
        }
    });
    addr
}

/// The test hosts are on loopback, which downloads refuse unless trusted: the stack's context trusts it.
async fn trust_loopback(stack: &mut Stack) {
    let secrets =
        shared::secrets::Secrets::from_json(&json!({"notion_token": e2e::notion_emulator::DEFAULT_TOKEN}).to_string())
            .unwrap();
    let mut ctx =
        shared::bootstrap::build(&stack.settings, &secrets, stack.queue.clone(), shared::bootstrap::Share::Whole)
            .await
            .unwrap();
    let mut downloads = ctx.downloader.config().clone();
    downloads.trusted_hosts.push(shared::extract::TrustedHost::any_port("127.0.0.1").unwrap());
    ctx.downloader = shared::extract::Downloader::new(downloads);
    stack.ctx = std::sync::Arc::new(ctx);
}

/// A file host that is down for one sync (connections dropped) leaves the text an earlier sync extracted in place,
/// with the failure noted (review L2). Before, the block was re-indexed without text.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_host_down_for_one_sync_keeps_the_earlier_text() {
    let _serial = SERIAL.lock().await;
    let mut stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack (is `make up` running?)");
    let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addr =
        serve_files_unless(vec![("/flaky.txt", Duration::ZERO, b"text of the flaky host".to_vec())], down.clone());
    trust_loopback(&mut stack).await;
    let block = json!({"type": "file", "text": "Caption of the file", "extra": {"_external_url": format!("http://{addr}/flaky.txt")}});
    let page =
        stack.control(Method::POST, "pages", Some(json!({"title": "Flaky file", "blocks": [block]}))).await.unwrap();
    let page_id = page["id"].as_str().expect("page id").to_string();
    let file_doc = |docs: &HashMap<String, Map<String, Value>>| {
        docs.values().find(|d| text(d, "type") == "file" && text(d, "page_id") == page_id).cloned().expect("file block")
    };

    let run = sync_one_page(&stack, &page_id).await;
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    let first = file_doc(&stack.documents().await.unwrap());
    assert!(text(&first, "body").contains("text of the flaky host"), "{first:?}");

    down.store(true, std::sync::atomic::Ordering::Relaxed);
    let run = sync_one_page(&stack, &page_id).await;
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    let docs = stack.documents().await.unwrap();
    let second = file_doc(&docs);
    let att = attachment(&second);
    println!("host down: {att:?}, body {:?}", text(&second, "body"));
    assert!(text(&second, "body").contains("text of the flaky host"), "text kept: {second:?}");
    assert_eq!(text(&second, "body"), text(&first, "body"), "the same body, the block's own text once");
    assert_eq!(att.get("extracted"), Some(&json!(true)), "{att:?}");
    let error = att.get("error").and_then(Value::as_str).unwrap_or_default();
    assert!(error.contains("download failed") && error.contains("earlier sync kept"), "{error:?}");
    assert!(text(&docs[&page_id], "body").contains("text of the flaky host"), "the page keeps it too");
    assert!(run.counts.errors >= 1, "the failure is counted: {run:?}");
    stack.cleanup().await;
}

/// The handlers in-process, timing each worker invocation.
struct TimedInvoker {
    inner: std::sync::Arc<dyn local_runner::Invoker>,
    longest_worker_ms: std::sync::atomic::AtomicU64,
    workers: std::sync::atomic::AtomicU64,
}

impl local_runner::Invoker for TimedInvoker {
    fn invoke<'a>(&'a self, function: &'a str, payload: Value) -> local_runner::BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.inner.invoke(function, payload).await;
            if function == "worker" {
                let ms = started.elapsed().as_millis() as u64;
                self.longest_worker_ms.fetch_max(ms, std::sync::atomic::Ordering::Relaxed);
                self.workers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            result
        })
    }
}

/// One page with a PDF Flate bomb (1.1 GiB of zeros in a 7 MB file), a PDF nested 50,000 deep, three links to a
/// host that answers after 20 s, and a good file last, synced with an 8 s invocation budget. Before: lopdf inflates
/// the bomb whole and overflows its stack on the nesting (the process aborts), and the page's downloads run
/// one after another far past the budget. Now every invocation ends within its budget, the run completes, each
/// poison file is indexed without text with its reason, and the good file after them is extracted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_pdfs_and_slow_hosts_end_as_textless_files_within_the_invocation_budget() {
    let _serial = SERIAL.lock().await;
    let mut stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack (is `make up` running?)");
    let slow = Duration::from_secs(20);
    let budget = Duration::from_secs(8);
    let bomb = pdf_fixtures::flate_bomb_pdf(1100 << 20);
    let addr = serve_files(vec![
        ("/bomb.pdf", Duration::ZERO, bomb),
        ("/nested.pdf", Duration::ZERO, pdf_fixtures::nested_array_pdf(50_000)),
        ("/slow-1.txt", slow, b"slow one".to_vec()),
        ("/slow-2.txt", slow, b"slow two".to_vec()),
        ("/slow-3.txt", slow, b"slow three".to_vec()),
        ("/after.txt", Duration::ZERO, b"the good file after the poison ones".to_vec()),
    ]);
    trust_loopback(&mut stack).await;
    stack.invocation_budget = Some(budget);

    let names = ["bomb.pdf", "nested.pdf", "slow-1.txt", "slow-2.txt", "slow-3.txt", "after.txt"];
    let blocks: Vec<Value> = std::iter::once(json!({"type": "paragraph", "text": "Poison files below"}))
        .chain(names.iter().map(|n| json!({"type": "file", "extra": {"_external_url": format!("http://{addr}/{n}")}})))
        .collect();
    let page =
        stack.control(Method::POST, "pages", Some(json!({"title": "Poison files", "blocks": blocks}))).await.unwrap();
    let page_id = page["id"].as_str().expect("page id").to_string();

    let run_id = stack.plan_page_run(&page_id).await.unwrap();
    let invoker = std::sync::Arc::new(TimedInvoker {
        inner: stack.invoker(),
        longest_worker_ms: Default::default(),
        workers: Default::default(),
    });
    let reset = reset_peak_rss();
    let started = Instant::now();
    let pumped = local_runner::pump_until_closed(
        invoker.clone(),
        stack.sqs.clone(),
        stack.ctx.runs.as_ref(),
        run_id,
        &stack.options,
    );
    let run = tokio::time::timeout(Duration::from_secs(300), pumped).await.expect("run within 5 min").unwrap();
    let longest = Duration::from_millis(invoker.longest_worker_ms.load(std::sync::atomic::Ordering::Relaxed));
    println!(
        "poison page: {:.1} s, {} worker invocations, longest {longest:?} (budget {budget:?}), peak RSS {} (reset: {reset}); {run:?}",
        started.elapsed().as_secs_f64(),
        invoker.workers.load(std::sync::atomic::Ordering::Relaxed),
        mib(proc_status_kib("VmHWM:")),
    );
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert_eq!(run.counts.failed, 0, "{run:?}");
    assert!(longest < budget + Duration::from_secs(4), "an invocation ran {longest:?} with a {budget:?} budget");

    let docs = stack.documents().await.unwrap();
    let file_docs: HashMap<String, (String, Map<String, Value>)> = docs
        .iter()
        .filter(|(_, d)| text(d, "type") == "file" && text(d, "page_id") == page_id)
        .map(|(id, d)| {
            (attachment(d).get("name").and_then(Value::as_str).unwrap_or_default().to_string(), (id.clone(), d.clone()))
        })
        .collect();
    let mut samples = run.errors.clone();
    for id in std::iter::once(format!("p:{page_id}")).chain((1..20).map(|c| format!("p:{page_id}:c{c}"))) {
        if let Some(task) = stack.ctx.runs.task(run.id, &id).await.unwrap() {
            samples.extend(task.error_samples);
        }
    }
    for (name, reason) in [
        ("bomb.pdf", "PDF not extracted: streams decompress to more than"),
        ("nested.pdf", "PDF not extracted: objects nested deeper than"),
        ("slow-1.txt", "time ran out"),
        ("slow-2.txt", "time ran out"),
        ("slow-3.txt", "time ran out"),
    ] {
        let (block_id, doc) = file_docs.get(name).unwrap_or_else(|| panic!("{name} indexed: {:?}", file_docs.keys()));
        let att = attachment(doc);
        println!("{name}: {att:?}");
        assert_eq!(att.get("extracted"), Some(&json!(false)), "{name}: {att:?}");
        let error = att.get("error").and_then(Value::as_str).unwrap_or_default();
        assert!(error.contains(reason), "{name}: {error:?} should say {reason:?}");
        assert!(
            samples.iter().any(|e| e.contains(reason) && e.contains(block_id.as_str())),
            "{name}: reason in the run's errors: {samples:?}"
        );
    }
    let after = attachment(&file_docs["after.txt"].1);
    assert_eq!(after.get("extracted"), Some(&json!(true)), "the good file after them: {after:?}");
    assert!(text(&docs[&page_id], "body").contains("the good file after the poison ones"), "page body");
    stack.cleanup().await;
}
