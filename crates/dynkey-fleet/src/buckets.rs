//! The two buckets, created so that both Debian's nats-server 2.9.10 and a
//! current server accept them.
//!
//! async-nats's `create_key_value` asks for the account's limits first, and
//! its account type needs fields a 2.9 server does not send, so the call
//! fails there ("data did not match any variant", reference/fleet.md 2.1).
//! We create each bucket's stream ourselves with the KV conventions (the
//! stream `KV_<bucket>` over `$KV.<bucket>.>`, history as the per-subject
//! limit, rollups allowed, deletes denied, direct gets, discard new, a
//! duplicate window no longer than `max_age`) and then open it with
//! `get_key_value`, which both servers answer.

use std::time::Duration;

use async_nats::jetstream::{self, context::GetStreamErrorKind, kv, stream};
use serde::Serialize;

use crate::error::FleetError;
use crate::nats::nats_error;
use crate::status::LIVE_HEARTBEATS;

/// Desired state: one key per scope.
pub const DESIRED: &str = "dynkey_desired";
/// Status: one key per instance.
pub const STATUS: &str = "dynkey_status";
/// Revisions kept per scope (history and rollback reach this far).
pub const DESIRED_HISTORY: i64 = 64;
/// The default heartbeat of instances (and of `init`'s status `max_age`).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// The stream of a KV bucket, as the KV conventions describe it.
pub fn kv_stream_config(bucket: &str, history: i64, max_age: Duration) -> stream::Config {
    // The server's default duplicate window is two minutes; it must not
    // exceed max_age when there is one.
    let window = Duration::from_secs(120);
    stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history,
        max_age,
        duplicate_window: if max_age.is_zero() {
            window
        } else {
            window.min(max_age)
        },
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        storage: stream::StorageType::File,
        num_replicas: 1,
        max_message_size: -1,
        max_bytes: -1,
        max_messages: -1,
        ..Default::default()
    }
}

/// What `init` made.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// Per bucket: `created`, `updated` or `unchanged`.
    pub buckets: Vec<(String, String)>,
    /// The status bucket's max_age, in seconds.
    pub status_max_age_s: f64,
}

async fn ensure(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<&'static str, FleetError> {
    match js.get_stream(&config.name).await {
        Ok(mut existing) => {
            let info = existing
                .info()
                .await
                .map_err(|e| nats_error(&config.name, e))?;
            let c = &info.config;
            if c.max_age == config.max_age
                && c.max_messages_per_subject == config.max_messages_per_subject
                && c.duplicate_window == config.duplicate_window
            {
                return Ok("unchanged");
            }
            js.update_stream(&config)
                .await
                .map_err(|e| nats_error(&format!("updating {}", config.name), e))?;
            Ok("updated")
        }
        Err(e)
            if matches!(e.kind(), GetStreamErrorKind::JetStream(j)
                if j.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            js.create_stream(&config)
                .await
                .map_err(|e| nats_error(&format!("creating {}", config.name), e))?;
            Ok("created")
        }
        Err(e) => Err(nats_error(&format!("stream {}", config.name), e)),
    }
}

/// Creates both buckets, or brings an existing status bucket's `max_age`
/// to three heartbeats. Idempotent.
pub async fn init(js: &jetstream::Context, heartbeat: Duration) -> Result<InitReport, FleetError> {
    let max_age = heartbeat * LIVE_HEARTBEATS;
    let desired = ensure(
        js,
        kv_stream_config(DESIRED, DESIRED_HISTORY, Duration::ZERO),
    )
    .await?;
    let status = ensure(js, kv_stream_config(STATUS, 1, max_age)).await?;
    Ok(InitReport {
        buckets: vec![
            (DESIRED.to_string(), desired.to_string()),
            (STATUS.to_string(), status.to_string()),
        ],
        status_max_age_s: max_age.as_secs_f64(),
    })
}

/// Opens a bucket made by [`init`].
pub async fn open(js: &jetstream::Context, bucket: &'static str) -> Result<kv::Store, FleetError> {
    js.get_key_value(bucket).await.map_err(|e| {
        let text = e.to_string();
        if text.contains("not found") {
            FleetError::NoBucket(bucket)
        } else {
            nats_error(&format!("bucket {bucket}"), e)
        }
    })
}
