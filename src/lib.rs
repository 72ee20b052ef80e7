//! logsieve: a streaming log shipper that labels every line as it passes, cheapest tier first.
//! `pipeline` reads top to bottom: sources → batcher → tiers → sinks → acknowledgements.
//! `config` reads the file once into a plan; each source, tier and sink owns its section of it.

pub mod ack;
pub mod batch;
pub mod classify;
pub mod config;
pub mod event;
pub mod health;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod metrics;
pub mod pipeline;
pub mod reference;
pub mod reload;
pub mod server;
pub mod sinks;
pub mod sources;
pub mod systemd;
pub mod tiers;
#[cfg(feature = "model")]
pub mod train;
