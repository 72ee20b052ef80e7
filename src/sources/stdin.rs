//! Standard-input source: lines from stdin until EOF, which drains the pipeline and ends the
//! run. Nothing to resume, so its chunks carry no acknowledgement.

use std::io::Read;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::lines::Framer;
use super::{
    Chunk, LineDecoder, Source, SourceBuild, SourceCommon, SourceConfig, SourceContext,
    SourceMetrics, SourcePlan,
};
use crate::ack::Ack;
use crate::config::{ConfigErrors, Section};
use crate::event::{now_rfc3339, Origin};

/// `type = "stdin"`: lines from standard input; EOF drains the pipeline and exits 0. It takes
/// only the keys every source takes.
#[derive(Debug, Deserialize, Serialize, schemars::JsonSchema)]
pub struct StdinSourceConfig {}

impl SourceConfig for StdinSourceConfig {
    const TYPE: &'static str = "stdin";

    fn plan(
        self,
        common: SourceCommon,
        _index: usize,
        _at: &Section,
        _errs: &mut ConfigErrors,
    ) -> Option<Box<dyn SourcePlan>> {
        Some(Box::new(StdinPlan { common }))
    }
}

struct StdinPlan {
    common: SourceCommon,
}

impl SourcePlan for StdinPlan {
    fn describe(&self) -> String {
        "stdin".into()
    }

    fn exclusive(&self) -> Option<String> {
        Some("standard input".into())
    }

    fn build(&self, cx: &SourceBuild) -> anyhow::Result<Box<dyn Source>> {
        Ok(Box::new(StdinSource {
            name: Arc::from(self.common.name.as_deref().unwrap_or("stdin")),
            common: self.common.clone(),
            metrics: SourceMetrics::register(cx.registry),
        }))
    }
}

pub struct StdinSource {
    name: Arc<str>,
    common: SourceCommon,
    metrics: SourceMetrics,
}

#[async_trait]
impl Source for StdinSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let shutdown = ctx.shutdown.clone();
        let out = ctx.out;
        // A thread of its own: a read from stdin cannot be cancelled, and must not hold up
        // shutdown; if it is still blocked when we stop, the process exit ends it.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("stdin-source".into())
            .spawn(move || {
                let result = read_stdin(&self, &out, &shutdown);
                let _ = done_tx.send(result);
            })?;
        let result = tokio::select! {
            r = done_rx => r.unwrap_or(Ok(())),
            _ = ctx.shutdown.cancelled() => Ok(()),
        };
        ctx.drained.cancelled().await;
        result
    }
}

fn read_stdin(
    source: &StdinSource,
    out: &tokio::sync::mpsc::Sender<Chunk>,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let decoder = LineDecoder::new(source.name.clone(), &source.common);
    let mut framer = Framer::new(source.common.max_line_bytes, 0);
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; 256 * 1024];
    let mut line_no = 0u64;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::anyhow!("reading standard input: {e}")),
        };
        let timestamp = now_rfc3339();
        let mut events = Vec::new();
        let mut emit = |line| {
            line_no += 1;
            events.push(decoder.event(line, &timestamp, Origin::Stdin { line: line_no }));
        };
        if n == 0 {
            framer.flush(&mut emit);
        } else {
            framer.push(&buf[..n], &mut emit);
        }
        if !events.is_empty() {
            source.metrics.count(&source.name, &events, n as u64);
            let chunk = Chunk {
                events,
                ack: Ack::none(),
            };
            if out.blocking_send(chunk).is_err() {
                return Ok(());
            }
        }
        if n == 0 || shutdown.is_cancelled() {
            return Ok(());
        }
    }
}
