//! Leases, zombie runs and the full-run lock (`lock:full` in `{index}-runs`, taken by create or compare-and-set).

use super::*;

/// The lock document as read, with what a compare-and-set needs.
#[derive(Debug, Clone)]
pub(super) struct HeldLock {
    run_id: u64,
    expires_at: DateTime<Utc>,
    seq_no: u64,
    primary_term: u64,
}

impl RunStore {
    /// Renews the run's lease for `lease` from now (and the full-run lock's, when the run holds it).
    pub async fn renew_lease(&self, run_id: u64, kind: RunKind, lease: std::time::Duration) -> Result<(), RunError> {
        let now = Utc::now();
        let until = now + lease_delta(lease);
        self.update_run(run_id, json!({"doc": {"lease_until": until, "renewed_at": now}}), "lease").await?;
        if kind != RunKind::Full {
            return Ok(());
        }
        match self.read_lock().await? {
            Some(held) if held.run_id == run_id => {
                let reply = self.write_lock(run_id, until, Some(&held)).await?;
                if reply.status == 409 {
                    tracing::warn!(run_id, "full-run lock changed hands while its lease was renewed");
                } else {
                    reply.ok(&format!("renewing the full-run lock of run {run_id}"))?;
                }
            }
            other => {
                let holder = other.map(|h| h.run_id);
                tracing::warn!(run_id, ?holder, "full run no longer holds the full-run lock");
            }
        }
        Ok(())
    }

    /// Closes every open run whose lease ran out as failed (deleting nothing), naming why; returns their ids.
    pub async fn close_zombies(&self) -> Result<Vec<u64>, RunError> {
        let now = Utc::now();
        let mut closed = Vec::new();
        for run in self.open_runs().await? {
            if let Some(reason) = zombie_reason(&run, &self.leases, now) {
                self.close_zombie(&run, &reason).await?;
                closed.push(run.id);
            }
        }
        Ok(closed)
    }

    pub(super) async fn close_zombie(&self, run: &RunRecord, reason: &str) -> Result<(), RunError> {
        self.abort(run.id, reason).await?;
        self.close(run.id, RunState::Failed, 0).await?;
        tracing::error!(
            run_id = run.id,
            kind = run.kind.as_str(),
            event = "run_closed",
            state = "failed",
            reason,
            "zombie run closed"
        );
        Ok(())
    }

    /// Records a new full run holding the full-run lock, or names the full run that holds it (and records nothing).
    pub async fn start_full_run(&self) -> Result<FullStart, RunError> {
        let run = self.create_run(RunKind::Full).await?;
        match self.take_full_lock(run.id).await {
            Ok(Lock::Taken) => Ok(FullStart::Started(run)),
            Ok(Lock::Busy(holder)) => {
                let reply = self
                    .client
                    .json(Method::Delete, &self.run_path("_doc", run.id), &[("refresh", "true".into())], None)
                    .await?;
                if !reply.is_success() && reply.status != 404 {
                    return Err(reply.refused(&format!("removing refused run {}", run.id)).into());
                }
                tracing::info!(
                    refused = run.id,
                    running = holder,
                    "full run not started: another full run holds the lock"
                );
                Ok(FullStart::Running(holder))
            }
            Err(err) => {
                let reason = format!("could not take the full-run lock: {err}");
                if let Err(e) = self.abort(run.id, &reason).await {
                    tracing::error!(run_id = run.id, error = %e, "could not record why the run did not start");
                } else if let Err(e) = self.close(run.id, RunState::Failed, 0).await {
                    tracing::error!(run_id = run.id, error = %e, "could not close the run");
                }
                Err(err)
            }
        }
    }

    /// Takes the full-run lock for `run_id`: created if there is none; taken over (compare-and-set) from a holder
    /// that is closed, missing, or dead (that one is closed as failed first); `Taken` again for its holder.
    pub async fn take_full_lock(&self, run_id: u64) -> Result<Lock, RunError> {
        for _ in 0..LOCK_ATTEMPTS {
            let now = Utc::now();
            let until = now + lease_delta(self.leases.planning);
            let reply = self.write_lock(run_id, until, None).await?;
            if reply.is_success() {
                tracing::info!(run_id, "full-run lock taken");
                return Ok(Lock::Taken);
            }
            if reply.status != 409 {
                return Err(reply.refused("taking the full-run lock").into());
            }
            let Some(held) = self.read_lock().await? else { continue };
            if held.run_id == run_id {
                return Ok(Lock::Taken);
            }
            if let Some(holder) = self.get(held.run_id).await?.filter(|r| !r.state.is_closed()) {
                match zombie_reason(&holder, &self.leases, now) {
                    Some(reason) if held.expires_at < now => self.close_zombie(&holder, &reason).await?,
                    _ => return Ok(Lock::Busy(holder.id)),
                }
            }
            // Its run is closed (or gone): take it over, unless someone else changed it since it was read.
            let reply = self.write_lock(run_id, until, Some(&held)).await?;
            if reply.is_success() {
                tracing::info!(run_id, previous = held.run_id, "full-run lock taken over");
                return Ok(Lock::Taken);
            }
            if reply.status != 409 && reply.status != 404 {
                return Err(reply.refused("taking over the full-run lock").into());
            }
        }
        Err(RunError::LockContended { run_id, attempts: LOCK_ATTEMPTS })
    }

    /// The full run that holds the lock and is alive, if any.
    pub async fn full_lock_holder(&self) -> Result<Option<u64>, RunError> {
        let Some(held) = self.read_lock().await? else { return Ok(None) };
        let now = Utc::now();
        match self.get(held.run_id).await? {
            Some(run) if !run.state.is_closed() => {
                let dead = held.expires_at < now && zombie_reason(&run, &self.leases, now).is_some();
                Ok((!dead).then_some(run.id))
            }
            _ => Ok(None),
        }
    }

    /// Releases the full-run lock if `run_id` holds it (compare-and-set: a lock taken over meanwhile stays).
    pub async fn release_full_lock(&self, run_id: u64) -> Result<(), RunError> {
        let Some(held) = self.read_lock().await?.filter(|h| h.run_id == run_id) else { return Ok(()) };
        let query = [("if_seq_no", held.seq_no.to_string()), ("if_primary_term", held.primary_term.to_string())];
        let reply = self.client.json(Method::Delete, &self.lock_path(), &query, None).await?;
        if reply.is_success() {
            tracing::info!(run_id, "full-run lock released");
        } else if reply.status != 404 && reply.status != 409 {
            return Err(reply.refused(&format!("releasing the full-run lock of run {run_id}")).into());
        }
        Ok(())
    }

    pub(super) fn lock_path(&self) -> String {
        format!("{}/_doc/{}", path_segment(&self.runs), path_segment(FULL_LOCK_ID))
    }

    pub(super) async fn read_lock(&self) -> Result<Option<HeldLock>, RunError> {
        let reply = self.client.json(Method::Get, &self.lock_path(), &[], None).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let body = reply.ok("reading the full-run lock")?;
        let field = |name: &str| body.get(name).and_then(Value::as_u64);
        let source = body.get("_source");
        let expires_at = source
            .and_then(|s| s.get("expires_at"))
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        match (
            source.and_then(|s| s.get("run_id")).and_then(Value::as_u64),
            expires_at,
            field("_seq_no"),
            field("_primary_term"),
        ) {
            (Some(run_id), Some(expires_at), Some(seq_no), Some(primary_term)) => {
                Ok(Some(HeldLock { run_id, expires_at, seq_no, primary_term }))
            }
            _ => Err(malformed("the full-run lock", format!("unexpected document {body}"))),
        }
    }

    /// Creates the lock (`held: None`, `op_type=create`) or replaces the one read (`if_seq_no`/`if_primary_term`).
    pub(super) async fn write_lock(
        &self,
        run_id: u64,
        until: DateTime<Utc>,
        held: Option<&HeldLock>,
    ) -> Result<Reply, RunError> {
        let body = json!({"lock": "full", "run_id": run_id, "expires_at": until, "renewed_at": Utc::now()});
        let query = match held {
            None => vec![("op_type", "create".to_string())],
            Some(h) => vec![("if_seq_no", h.seq_no.to_string()), ("if_primary_term", h.primary_term.to_string())],
        };
        Ok(self.client.json(Method::Put, &self.lock_path(), &query, Some(&body)).await?)
    }
}
