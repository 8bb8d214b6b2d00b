//! What several test modules share: a log capture, the client credentials'
//! `Authorization` header, and a source on the in-memory mock.

use std::cell::RefCell;
use std::io;
use std::sync::{Arc, Mutex, Once};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cxone_auth::mock::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, MockCxone};
use cxone_auth::token::{AccessKeyGrant, ServiceTransport};

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// Where the events this thread emits are captured, while a test does.
    static CAPTURE: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// Captures every event this thread emits (at every level, with span
/// openings and closings) until the guard drops. Tests using it run on a
/// current-thread runtime, so their tasks' events are this thread's.
///
/// The binary has one subscriber, set on first use, writing each event into
/// the capture of the thread that emitted it: subscribers set per test, on
/// threads running side by side, race in `tracing`'s callsite interest and
/// level caches and lose events.
pub(crate) fn capture_logs() -> (Captured, CaptureGuard) {
    static SUBSCRIBER: Once = Once::new();
    SUBSCRIBER.call_once(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .with_ansi(false)
            .with_writer(|| ThreadCapture)
            .init();
    });
    let captured = Captured::default();
    CAPTURE.with(|capture| *capture.borrow_mut() = Some(captured.clone()));
    (captured, CaptureGuard)
}

/// Ends this thread's capture when dropped.
pub(crate) struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|capture| capture.borrow_mut().take());
    }
}

/// The subscriber's writer: the emitting thread's capture, if any.
struct ThreadCapture;

impl io::Write for ThreadCapture {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        CAPTURE.with(|capture| match &mut *capture.borrow_mut() {
            Some(captured) => captured.write(bytes),
            None => Ok(bytes.len()),
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Form-urlencodes `value`, as RFC 6749 §2.3.1 asks for client credentials.
pub(crate) fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The RFC 6749 §2.3.1 `Authorization` header of a client.
pub(crate) fn basic_authorization(id: &str, secret: &str) -> String {
    let credentials = format!("{}:{}", form_encode(id), form_encode(secret));
    format!("Basic {}", STANDARD.encode(credentials))
}

/// The access key grant with the mock's credentials, sent to `mock` in memory.
pub(crate) fn mock_grant(mock: &MockCxone) -> AccessKeyGrant {
    AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .token_url(mock.token_url())
        .unwrap()
        .transport(ServiceTransport::new(mock.router()))
}
