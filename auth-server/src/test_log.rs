//! Test support: capture what `tracing` logs while a closure runs, for unit
//! tests of log lines (rate limits, codes, what must never be logged).

use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged (text format, no colours) while `f` runs on this thread.
pub(crate) fn logged(f: impl FnOnce()) -> String {
    let buf = Buf::default();
    let out = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || out.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = buf.0.lock().clone();
    String::from_utf8(text).expect("tracing writes UTF-8")
}
