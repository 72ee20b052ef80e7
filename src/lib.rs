//! logsieve: a streaming log shipper that labels every line as it passes, cheapest tier first.
//! `pipeline` reads top to bottom: sources → batcher → tiers → sinks → acknowledgements.

pub mod ack;
pub mod batch;
pub mod classify;
pub mod config;
pub mod event;
pub mod kafka;
pub mod metrics;
pub mod pipeline;
pub mod server;
pub mod sinks;
pub mod sources;
pub mod tiers;
pub mod train;
