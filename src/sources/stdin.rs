//! Standard-input source: lines from stdin until EOF, which drains the pipeline and ends the
//! run. Nothing to resume, so its chunks carry no acknowledgement.

use std::io::Read;
use std::sync::Arc;

use async_trait::async_trait;

use super::lines::Framer;
use super::{count, Chunk, LineDecoder, Source, SourceContext, SourceMetrics};
use crate::ack::Ack;
use crate::config::SourceConfig;
use crate::event::{now_rfc3339, Origin};

pub struct StdinSource {
    name: Arc<str>,
    cfg: SourceConfig,
    metrics: SourceMetrics,
}

impl StdinSource {
    pub fn new(cfg: SourceConfig, metrics: SourceMetrics) -> StdinSource {
        let name: Arc<str> = Arc::from(cfg.name.as_deref().unwrap_or("stdin"));
        StdinSource { name, cfg, metrics }
    }
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
    let decoder = LineDecoder::new(source.name.clone(), &source.cfg);
    let mut framer = Framer::new(source.cfg.max_line_bytes, 0);
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
            count(&source.metrics, &source.name, &events, n as u64);
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
