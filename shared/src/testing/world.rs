//! `World`: a `SyncContext` over the in-memory fakes and an emulated Notion served in-process, and a pump that
//! plays the event source mappings: task messages go to `worker::handle_batch` (a failed one comes back with a
//! higher receive count, and after `max_receive_count` attempts goes to the dead letters), finalize messages to
//! `reaper::handle_message`. Delays are not waited for: the order of delivery is what the tests need, not time.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notion_emulator::{ServerConfig, WorkspaceKind};
use serde_json::{json, Value};

use super::journal::{Journal, JournalQueue};
use super::{MemoryLedger, MemoryStore};
use crate::config::ConnectorConfig;
use crate::extract::{DownloadConfig, Downloader, TrustedHost};
use crate::notion::{ApiVersion, ClientConfig, NotionClient, Token};
use crate::queue::MemoryQueue;
use crate::runs::RunRecord;
use crate::sync::worker::{handle_batch, IncomingMessage};
use crate::sync::{reaper, Limits, SyncContext};
use crate::task::{FinalizeMessage, RunKind, TaskMessage};

/// How the pump delivers (the defaults: batches of 10, handled 10 at once, no deadline, no duplicates).
#[derive(Debug, Clone)]
pub struct Pump {
    /// Each batch's deadline is this long after the batch starts (`Some(Duration::ZERO)`: passed at once).
    pub budget: Option<Duration>,
    /// Every task message is delivered twice, its copy right after its batch (SQS delivers at least once).
    /// Only a message's first appearance is doubled, so follow-ups sent again do not multiply without end.
    pub duplicates: bool,
    /// Messages per worker invocation (the event source mapping's batch size).
    pub batch_size: usize,
    /// Messages of one batch handled at once.
    pub concurrency: usize,
    /// Deliveries (task batches and finalize rounds) after which the pump panics: a run that never settles.
    pub max_rounds: usize,
}

impl Default for Pump {
    fn default() -> Self {
        Pump { budget: None, duplicates: false, batch_size: 10, concurrency: 10, max_rounds: 20_000 }
    }
}

/// What a pump did.
#[derive(Debug, Clone)]
pub struct Pumped {
    /// The run as the pump left it: closed, or open when nothing was left to deliver (messages held back).
    pub run: RunRecord,
    /// Task messages handed to the worker, duplicates and retries included.
    pub deliveries: usize,
    /// Finalize messages handed to the reaper.
    pub finalize_checks: usize,
}

/// One test's world. The emulator stops when the world is dropped.
pub struct World {
    pub emulator: notion_emulator::Server,
    /// What the handlers get: the fakes below behind their ports, a Notion client on the emulator.
    pub ctx: SyncContext,
    pub store: Arc<MemoryStore>,
    pub ledger: Arc<MemoryLedger>,
    pub queue: Arc<MemoryQueue>,
    /// Task messages that failed `max_receive_count` deliveries (the work queue's DLQ).
    pub dead_letters: Mutex<Vec<TaskMessage>>,
}

impl World {
    /// A world on a fresh emulated workspace of `kind`, with the default connector configuration.
    pub async fn start(kind: WorkspaceKind) -> World {
        World::start_with(kind, ConnectorConfig::default()).await
    }

    /// Panics when the emulator cannot start (this is a test harness).
    pub async fn start_with(kind: WorkspaceKind, config: ConnectorConfig) -> World {
        let emulator = notion_emulator::serve(ServerConfig::for_tests(kind)).await.expect("emulated Notion");
        let base = emulator.base_url();
        // No pacing: the emulator sets no rate limit unless a test asks for one.
        let client = ClientConfig::new(base.as_str(), ApiVersion::default(), f64::INFINITY);
        let notion = NotionClient::new(Token::new(notion_emulator::DEFAULT_TOKEN), client).expect("Notion client");
        // The emulator serves the file bytes too, on loopback: trusted like the API, as bootstrap trusts it.
        let url = url::Url::parse(&base).expect("emulator URL");
        let downloads =
            DownloadConfig { trusted_hosts: TrustedHost::of_url(&url).into_iter().collect(), ..Default::default() };
        let store = Arc::new(MemoryStore::default());
        let ledger = Arc::new(MemoryLedger::default());
        let queue = Arc::new(MemoryQueue::default());
        let journaled = JournalQueue { inner: queue.clone(), journal: ledger.journal.clone() };
        let ctx = SyncContext {
            notion,
            store: store.clone(),
            runs: ledger.clone(),
            parts: ledger.clone(),
            queue: Arc::new(journaled),
            config,
            downloader: Downloader::new(downloads),
            limits: Limits::default(),
        };
        World { emulator, ctx, store, ledger, queue, dead_letters: Mutex::default() }
    }

    /// Record writes and message sends, in order.
    pub fn journal(&self) -> &Journal {
        &self.ledger.journal
    }

    /// What a sync of the workspace must index, as the emulator's `/__control/expected` returns it.
    pub fn expected(&self) -> Value {
        notion_emulator::expected::expected(&self.emulator.app.store(), notion_emulator::ApiVersion::V2025, None)
    }

    /// Requests the emulator has received under `/v1`.
    pub fn notion_calls(&self) -> u64 {
        self.emulator.app.stats().total
    }

    /// Plans a run through the planner's handler, as a schedule would start it.
    pub async fn plan(&self, kind: RunKind) -> RunRecord {
        let event = json!({"kind": kind.as_str()});
        crate::sync::planner::handle_event(&self.ctx, &event).await.expect("planning")
    }

    /// Plans a run and pumps it until it is closed (or nothing is left to deliver).
    pub async fn sync(&self, kind: RunKind) -> RunRecord {
        let run = self.plan(kind).await;
        self.pump(run.id).await
    }

    /// Pumps with the defaults; the run as left.
    pub async fn pump(&self, run_id: u64) -> RunRecord {
        self.pump_with(run_id, &Pump::default()).await.run
    }

    /// Takes the task messages waiting in the queue (to hold them back, or deliver them by hand).
    pub fn take_tasks(&self) -> Vec<TaskMessage> {
        self.queue.take_tasks()
    }

    /// Takes the finalize messages waiting in the queue.
    pub fn take_finalizes(&self) -> Vec<FinalizeMessage> {
        let mut finalizes = self.queue.finalizes.lock().expect("queue lock");
        std::mem::take(&mut *finalizes).into_iter().map(|(msg, _delay)| msg).collect()
    }

    /// Hands `messages` to the worker as one batch, each with this receive count; returns the task ids of
    /// those that failed (the batch's `batchItemFailures`).
    pub async fn deliver(&self, messages: &[TaskMessage], receive_count: u32, pump: &Pump) -> Vec<String> {
        let batch: Vec<IncomingMessage> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| IncomingMessage { message_id: i.to_string(), body: m.encode(), receive_count })
            .collect();
        let deadline = pump.budget.map(|budget| Instant::now() + budget);
        let failed = handle_batch(&self.ctx, batch, deadline, pump.concurrency).await;
        failed.iter().filter_map(|id| messages.get(id.parse::<usize>().ok()?)).map(|m| m.task_id.clone()).collect()
    }

    /// Delivers the queue's messages until run `run_id` is closed or nothing is left: task messages first (in
    /// the order sent), then, when none is waiting, the finalize messages.
    pub async fn pump_with(&self, run_id: u64, pump: &Pump) -> Pumped {
        let max_receive_count = self.ctx.limits.max_receive_count;
        let mut pending: VecDeque<(TaskMessage, u32)> = VecDeque::new();
        let mut doubled: HashSet<String> = HashSet::new();
        let (mut deliveries, mut finalize_checks) = (0, 0);
        let mut settled = false;
        for _ in 0..pump.max_rounds {
            pending.extend(self.take_tasks().into_iter().map(|m| (m, 1)));
            if !pending.is_empty() {
                let n = pump.batch_size.max(1).min(pending.len());
                let batch: Vec<(TaskMessage, u32)> = pending.drain(..n).collect();
                deliveries += batch.len();
                // Delivered one receive count at a time, so each message gets its own.
                let mut failed = Vec::new();
                for count in batch.iter().map(|(_, c)| *c).collect::<std::collections::BTreeSet<_>>() {
                    let same: Vec<TaskMessage> =
                        batch.iter().filter(|(_, c)| *c == count).map(|(m, _)| m.clone()).collect();
                    let ids = self.deliver(&same, count, pump).await;
                    failed.extend(same.into_iter().filter(|m| ids.contains(&m.task_id)).map(|m| (m, count)));
                }
                for (msg, count) in failed {
                    if count >= max_receive_count {
                        self.dead_letters.lock().expect("dead letters lock").push(msg);
                    } else {
                        pending.push_back((msg, count + 1));
                    }
                }
                if pump.duplicates {
                    for (msg, _) in batch.into_iter().rev() {
                        if doubled.insert(msg.encode()) {
                            pending.push_front((msg, 1));
                        }
                    }
                }
                continue;
            }
            let finalizes = self.take_finalizes();
            if finalizes.is_empty() {
                settled = true;
                break;
            }
            for msg in finalizes {
                finalize_checks += 1;
                if let Err(err) = reaper::handle_message(&self.ctx, &msg.encode()).await {
                    // Left for a retry, as SQS would.
                    tracing::warn!(error = %err, "finalize failed; delivered again");
                    self.queue.finalizes.lock().expect("queue lock").push((msg, 0));
                }
            }
            let closed = self.run(run_id).await.state.is_closed();
            if closed || self.queue.tasks.lock().expect("queue lock").is_empty() {
                // Closed, or the reaper only re-delayed its check: what is held back keeps the run open.
                settled = true;
                break;
            }
        }
        assert!(
            settled,
            "run {run_id} did not settle after {} rounds: {} messages pending",
            pump.max_rounds,
            pending.len()
        );
        let run = self.run(run_id).await;
        Pumped { run, deliveries, finalize_checks }
    }

    /// The run's record (panics if there is none).
    pub async fn run(&self, run_id: u64) -> RunRecord {
        self.ctx.runs.get(run_id).await.expect("run record").unwrap_or_else(|| panic!("run {run_id} not recorded"))
    }
}
