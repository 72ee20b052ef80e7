//! Stdout sink: JSON lines to standard output, one write per batch. Delivered means handed to
//! the pipe or terminal; a reader that stops reading slows the whole agent (backpressure).

use std::io::Write;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{encode_json_lines, Sink, SinkBuild, SinkConfig, SinkPlan};
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
        Ok(Box::<StdoutSink>::default())
    }
}

#[derive(Default)]
pub struct StdoutSink {
    buf: Vec<u8>,
}

#[async_trait]
impl Sink for StdoutSink {
    fn name(&self) -> &str {
        "stdout"
    }

    async fn write(&mut self, records: &[Record]) -> std::io::Result<u64> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        encode_json_lines(records, &mut buf);
        let (buf, result) = tokio::task::spawn_blocking(move || {
            let mut out = std::io::stdout().lock();
            let result = out.write_all(&buf).and_then(|()| out.flush());
            (buf, result)
        })
        .await
        .map_err(std::io::Error::other)?;
        let written = buf.len() as u64;
        self.buf = buf;
        result.map(|()| written)
    }
}
