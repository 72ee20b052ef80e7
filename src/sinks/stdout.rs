//! Stdout sink: JSON lines to standard output, one write per batch. Delivered means handed to
//! the pipe or terminal; a reader that stops reading slows the whole agent (backpressure).

use std::io::Write;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::{OrderedWriter, PendingWrite, Sink, SinkBuild, SinkConfig, SinkPlan};
use crate::config::{ConfigErrors, Section};
use crate::event::Record;

/// `type = "stdout"`: JSON lines on standard output (the default when no sink is configured).
#[derive(Debug, Deserialize, Serialize, schemars::JsonSchema)]
pub struct StdoutSinkConfig {}

impl SinkConfig for StdoutSinkConfig {
    const TYPE: &'static str = "stdout";

    fn plan(self, _: usize, _: &Section, _: &mut ConfigErrors) -> Option<Box<dyn SinkPlan>> {
        Some(Box::new(StdoutPlan))
    }
}

pub struct StdoutPlan;

impl SinkPlan for StdoutPlan {
    fn describe(&self) -> String {
        "stdout (JSON lines)".into()
    }

    fn exclusive(&self) -> Option<String> {
        Some("standard output".into())
    }

    fn open(&self, _: &SinkBuild) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(StdoutSink {
            writer: OrderedWriter::start("logsieve-stdout", |bytes| {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            })?,
        }))
    }
}

/// Its thread writes the batches in order while the next one is encoded.
pub struct StdoutSink {
    writer: OrderedWriter,
}

#[async_trait]
impl Sink for StdoutSink {
    fn name(&self) -> &str {
        "stdout"
    }

    async fn write(&mut self, records: &[Record]) -> std::io::Result<u64> {
        self.writer.send(records).await
    }

    fn start_write(&mut self, records: &Arc<Vec<Record>>) -> Option<PendingWrite> {
        Some(self.writer.send(records))
    }

    fn writes_in_flight(&self) -> usize {
        2
    }
}
