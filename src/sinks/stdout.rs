//! Stdout sink: JSON lines to standard output, one write per batch. Delivered means handed to
//! the pipe or terminal; a reader that stops reading slows the whole agent (backpressure).

use std::io::Write;

use async_trait::async_trait;

use super::{encode_json_lines, Sink};
use crate::event::Record;

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
