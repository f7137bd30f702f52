//! The body of the workers' test hook `GET`/`POST /faults` (served on their metrics
//! listener only with `workers.fault_injection`, which production refuses): how many
//! of each injected failure are still to happen. The end-to-end harness arms them in
//! a running `workers` process and reads back how many were used.

use serde::{Deserialize, Serialize};

/// Counts of injected failures still to come, one field per place that can fail.
/// `POST /faults` adds these counts; `GET /faults` answers the ones left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultCounts {
    /// A sequencer runner "crashes" (drops its channel unacked) right before
    /// committing a batch.
    pub crash_before_commit: u32,
    /// A runner crashes after committing a batch, before acking it.
    pub crash_after_commit: u32,
    /// The payment saga's command send after a settled payment fails, as a broker
    /// away at that moment does.
    pub saga_send_fail: u32,
    /// The notifier's step that records a sent email fails.
    pub notifier_fail_record: u32,
}
