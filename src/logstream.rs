//! The agent's log lines as a stream others can follow
//! (`/v1/agent/monitor`, `meridian monitor`): a tracing layer that hands
//! each event to whoever listens, at the most verbose level any listener
//! asked for, whatever level the agent itself logs at (as Consul's
//! monitor shows debug lines of an agent that logs at info).
//!
//! The fan-out is a bounded broadcast: a listener that falls behind loses
//! the oldest lines (and is told how many) rather than holding memory or
//! slowing the agent. With no listener an event costs one atomic load.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Lines a slow listener may be behind before it loses some.
const BUFFER: usize = 1024;

/// Consul's log levels, most verbose first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
}

impl LogLevel {
    /// `trace`, `debug`, `info`, `warn`, `err`/`error`, any case (the
    /// spellings Consul's `log_level` takes).
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.to_ascii_lowercase().as_str() {
            "trace" => Some(LogLevel::Trace),
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" => Some(LogLevel::Warn),
            "err" | "error" => Some(LogLevel::Error),
            _ => None,
        }
    }

    fn of(level: &Level) -> LogLevel {
        match *level {
            Level::TRACE => LogLevel::Trace,
            Level::DEBUG => LogLevel::Debug,
            Level::INFO => LogLevel::Info,
            Level::WARN => LogLevel::Warn,
            _ => LogLevel::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

/// One event, formatted once for every listener.
#[derive(Debug)]
pub struct LogLine {
    pub level: LogLevel,
    /// `2026-12-02T17:40:51.123Z [INFO]  message: key=value`
    pub text: String,
    /// The same as Consul's `-log-json` line.
    pub json: String,
}

struct Hub {
    tx: broadcast::Sender<Arc<LogLine>>,
    /// Listeners per level, to know the most verbose one wanted.
    listeners: [AtomicUsize; 5],
}

fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(|| Hub {
        tx: broadcast::channel(BUFFER).0,
        listeners: Default::default(),
    })
}

/// Whether some listener wants lines at `level`.
fn wanted(level: LogLevel) -> bool {
    let h = hub();
    h.listeners[..=level as usize]
        .iter()
        .any(|n| n.load(Ordering::Relaxed) > 0)
}

/// A listener: lines at its level and above; unregisters when dropped.
pub struct Listener {
    level: LogLevel,
    rx: broadcast::Receiver<Arc<LogLine>>,
}

impl Listener {
    pub fn new(level: LogLevel) -> Listener {
        let h = hub();
        h.listeners[level as usize].fetch_add(1, Ordering::Relaxed);
        Listener {
            level,
            rx: h.tx.subscribe(),
        }
    }

    /// The next line at this listener's level; `Err(n)` when `n` lines
    /// were lost to a full buffer.
    pub async fn next(&mut self) -> Result<Arc<LogLine>, u64> {
        loop {
            match self.rx.recv().await {
                Ok(line) if line.level >= self.level => return Ok(line),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => return Err(n),
                // The hub is static: its sender never goes away.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        hub().listeners[self.level as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

/// The layer to add to the agent's subscriber (with [`layer_filter`]).
pub struct MonitorLayer;

/// Only the agent's own events, and only while someone listens at their
/// level: decided per event, since listeners come and go.
pub fn layer_filter<S>() -> impl tracing_subscriber::layer::Filter<S> {
    tracing_subscriber::filter::filter_fn(|meta| {
        meta.is_event()
            && meta.target().starts_with("meridian")
            && wanted(LogLevel::of(meta.level()))
    })
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.rest
                .push((field.name().to_string(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let v = format!("{value:?}");
        if field.name() == "message" {
            self.message = v;
        } else {
            self.rest.push((field.name().to_string(), v));
        }
    }
}

impl<S: Subscriber> Layer<S> for MonitorLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let level = LogLevel::of(event.metadata().level());
        let mut f = Fields::default();
        event.record(&mut f);
        let now = chrono::Utc::now();
        let ts = now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        // Consul pads the bracketed level to one width.
        let mut text = format!("{ts} {:<7} {}", format!("[{}]", level.as_str()), f.message);
        for (k, v) in &f.rest {
            let _ = write!(text, " {k}={v}");
        }
        let mut json = serde_json::Map::new();
        json.insert("@level".into(), level.as_str().to_ascii_lowercase().into());
        json.insert("@message".into(), f.message.clone().into());
        json.insert("@module".into(), event.metadata().target().into());
        json.insert(
            "@timestamp".into(),
            now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string().into(),
        );
        for (k, v) in f.rest {
            json.insert(k, v.into());
        }
        let line = LogLine {
            level,
            text,
            json: serde_json::Value::Object(json).to_string(),
        };
        // No receiver between the filter and here: nothing to do.
        let _ = hub().tx.send(Arc::new(line));
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[tokio::test]
    async fn a_listener_gets_its_level_and_above_and_nothing_is_formatted_without_one() {
        let subscriber =
            tracing_subscriber::registry().with(MonitorLayer.with_filter(layer_filter()));
        let _guard = tracing::subscriber::set_default(subscriber);
        assert!(!wanted(LogLevel::Error), "no listener yet");
        let mut warn = Listener::new(LogLevel::Warn);
        tracing::info!(target: "meridian::test", "not for a warn listener");
        tracing::warn!(target: "meridian::test", service = "web", "check failed");
        let line = warn.next().await.expect("no loss");
        assert_eq!(line.level, LogLevel::Warn);
        assert!(
            line.text.ends_with("[WARN]  check failed service=web"),
            "{}",
            line.text
        );
        let json: serde_json::Value = serde_json::from_str(&line.json).expect("json");
        assert_eq!(json["@message"], "check failed");
        assert_eq!(json["service"], "web");
        drop(warn);
        assert!(!wanted(LogLevel::Error), "the listener unregistered");
        assert_eq!(LogLevel::parse("ERR"), Some(LogLevel::Error));
        assert_eq!(LogLevel::parse("verbose"), None);
    }
}
