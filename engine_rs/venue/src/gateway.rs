//! The FIX 4.4 gateway: one IronFix acceptor per configured member on one listener
//! ([`AcceptorRegistry`]), each with a file store so sequence numbers and sent messages survive
//! restarts (ResendRequest / SequenceReset-GapFill are IronFix's). Application messages are
//! parsed here into [`Command`]s and published into the input ring; the [`Router`] sends the
//! core's reports back as ExecutionReport (35=8) / OrderCancelReject (35=9).
//!
//! Malformed messages (a required tag missing, a value that does not parse) get a session-level
//! Reject (35=3) with the reason and the tag; readable orders the venue cannot take (a price off
//! the tick, an unsupported TimeInForce or OrdType) go through the sequencer and come back as
//! ExecutionReport(Rejected), like the engine's own rejects.

use crate::command::{Command, OrdType, Symbol};
use crate::config::{from_ticks, Config, Pricing};
use crate::core::{ExecKind, OrdStatus, Reason, Report};
use crate::fix_parse::parse;
use crate::sequencer::{mono_ns, InputProducer, ReportSink};
use async_trait::async_trait;
use disruptor::Producer;
use engine_rs::Side;
use ironfix_core::message::{MsgType, RawMessage};
use ironfix_core::types::CompId;
use ironfix_engine::application::{Application, RejectReason, SessionId};
use ironfix_engine::{Acceptor, AcceptorRegistry, Connection, OutboundMessage};
use ironfix_session::SessionConfig;
use ironfix_store::{FileStore, FileStoreConfig, MessageStore, SyncPolicy};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Sends the core's reports to the live sessions. Reports for a session that is not logged on
/// are counted and dropped (the member reconciles with an order status on its next logon).
pub struct Router {
    sessions: RwLock<Vec<Option<mpsc::Sender<Report>>>>,
    names: Vec<String>,
    pub undeliverable: AtomicU64,
    pub disconnected_slow: AtomicU64,
}

impl Router {
    pub fn new(names: Vec<String>) -> Arc<Self> {
        Arc::new(Router {
            sessions: RwLock::new(vec![None; names.len()]),
            names,
            undeliverable: AtomicU64::new(0),
            disconnected_slow: AtomicU64::new(0),
        })
    }

    fn attach(&self, session: u16, tx: mpsc::Sender<Report>) {
        self.sessions.write().expect("router lock")[session as usize] = Some(tx);
    }

    fn detach(&self, session: u16, tx: &mpsc::Sender<Report>) {
        let mut s = self.sessions.write().expect("router lock");
        if s[session as usize]
            .as_ref()
            .is_some_and(|t| t.same_channel(tx))
        {
            s[session as usize] = None;
        }
    }
}

/// The report thread's end of the router.
pub struct RouterSink(pub Arc<Router>);

impl ReportSink for RouterSink {
    fn on_report(&mut self, report: &Report, _stamp_ns: u64) {
        let r = &self.0;
        let full = {
            let sessions = r.sessions.read().expect("router lock");
            match sessions
                .get(report.session as usize)
                .and_then(Option::as_ref)
            {
                None => {
                    r.undeliverable.fetch_add(1, Ordering::Relaxed);
                    false
                }
                Some(tx) => match tx.try_send(*report) {
                    Ok(()) => false,
                    Err(mpsc::error::TrySendError::Full(_)) => true,
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        r.undeliverable.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                },
            }
        };
        if full {
            // the client stopped reading: drop its queue; its writer logs it out
            eprintln!(
                "venue: session {} is not reading its execution reports; disconnecting it",
                r.names[report.session as usize]
            );
            r.disconnected_slow.fetch_add(1, Ordering::Relaxed);
            r.sessions.write().expect("router lock")[report.session as usize] = None;
        }
    }
}

/// The IronFix application: parses orders into commands.
pub struct Gateway {
    sessions: HashMap<String, u16>,
    pricing: HashMap<Symbol, u64>,
    producer: Mutex<InputProducer>,
    core: std::thread::Thread,
    pub orders_in: AtomicU64,
    pub session_rejects: AtomicU64,
}

impl Gateway {
    pub fn new(
        config: &Config,
        pricing: &[Pricing],
        producer: InputProducer,
        core: std::thread::Thread,
    ) -> Self {
        Gateway {
            sessions: config
                .sessions
                .iter()
                .enumerate()
                .map(|(i, s)| (s.comp_id.clone(), i as u16))
                .collect(),
            pricing: pricing.iter().map(|p| (p.symbol, p.tick_nanos)).collect(),
            producer: Mutex::new(producer),
            core,
            orders_in: AtomicU64::new(0),
            session_rejects: AtomicU64::new(0),
        }
    }

    fn session_index(&self, id: &SessionId) -> Option<u16> {
        self.sessions
            .get(&id.target_comp_id)
            .or_else(|| self.sessions.get(&id.sender_comp_id))
            .copied()
    }

    /// Publishes into the input ring; when it is full, waits (backpressure to the client).
    async fn publish(&self, command: Command) {
        let stamp_ns = mono_ns();
        loop {
            let done = {
                let mut p = self.producer.lock().expect("producer lock");
                p.try_publish(|s| {
                    s.command = command;
                    s.stamp_ns = stamp_ns;
                })
                .is_ok()
            };
            if done {
                self.core.unpark();
                self.orders_in.fetch_add(1, Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(Duration::from_micros(50)).await;
        }
    }
}

#[async_trait]
impl Application for Gateway {
    async fn on_create(&self, _session_id: &SessionId) {}

    async fn on_logon(&self, session_id: &SessionId) {
        eprintln!("venue: {session_id} logged on");
    }

    async fn on_logout(&self, session_id: &SessionId) {
        eprintln!("venue: {session_id} logged out");
    }

    async fn to_admin(&self, _message: &mut OutboundMessage, _session_id: &SessionId) {}

    async fn from_admin(
        &self,
        _message: &RawMessage<'_>,
        _session_id: &SessionId,
    ) -> Result<(), RejectReason> {
        Ok(())
    }

    async fn to_app(&self, _message: &mut OutboundMessage, _session_id: &SessionId) {}

    async fn from_app(
        &self,
        message: &RawMessage<'_>,
        session_id: &SessionId,
    ) -> Result<(), RejectReason> {
        let Some(session) = self.session_index(session_id) else {
            return Err(RejectReason::new(5, "unknown session"));
        };
        match parse(message, session, &self.pricing) {
            Ok(command) => {
                self.publish(command).await;
                Ok(())
            }
            Err(r) => {
                self.session_rejects.fetch_add(1, Ordering::Relaxed);
                eprintln!("venue: {session_id}: session reject: {r:?}");
                let reason = RejectReason::new(r.code, r.text);
                Err(match r.ref_tag {
                    Some(tag) => reason.with_ref_tag(tag),
                    None => reason,
                })
            }
        }
    }
}

/// `YYYYMMDD-HH:MM:SS.sss` (UTCTimestamp) now.
pub fn utc_timestamp() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil-from-days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn status_char(s: OrdStatus) -> char {
    match s {
        OrdStatus::New => '0',
        OrdStatus::PartiallyFilled => '1',
        OrdStatus::Filled => '2',
        OrdStatus::Cancelled => '4',
        OrdStatus::Rejected => '8',
    }
}

/// Average price with up to 9 decimals (trailing zeros trimmed).
fn avg_px(r: &Report, tick_nanos: u64) -> String {
    if r.cum_qty == 0 {
        return "0".into();
    }
    let nanos = r.notional * tick_nanos as u128 / r.cum_qty as u128;
    let s = from_ticks(nanos as i128, 1);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

/// The FIX message of a report.
pub fn build_message(conn: &Connection, r: &Report, tick_nanos: u64) -> OutboundMessage {
    let side = if r.side == Side::Buy { '1' } else { '2' };
    if let ExecKind::CancelReject {
        response_to_replace,
    } = r.kind
    {
        let mut m = conn.acquire(MsgType::OrderCancelReject);
        let order_id = if r.order_id == 0 {
            "NONE".to_string()
        } else {
            r.order_id.to_string()
        };
        m.push_str(37, &order_id)
            .push_str(11, r.cl_ord_id.as_str())
            .push_str(41, r.orig_cl_ord_id.as_str())
            .push_char(39, status_char(r.status))
            .push_char(434, if response_to_replace { '2' } else { '1' })
            .push_uint(102, r.reason.fix_code(true) as u64);
        if !r.reason.text().is_empty() {
            m.push_str(58, r.reason.text());
        }
        return m;
    }
    let mut m = conn.acquire(MsgType::ExecutionReport);
    let exec_type = match r.kind {
        ExecKind::New => '0',
        ExecKind::Trade => 'F',
        ExecKind::Cancelled => '4',
        ExecKind::Replaced => '5',
        ExecKind::Rejected => '8',
        ExecKind::Status => 'I',
        ExecKind::CancelReject { .. } => unreachable!("handled above"),
    };
    let order_id = if r.order_id == 0 {
        "NONE".to_string()
    } else {
        r.order_id.to_string()
    };
    m.push_str(37, &order_id).push_str(11, r.cl_ord_id.as_str());
    if !r.orig_cl_ord_id.is_empty() {
        m.push_str(41, r.orig_cl_ord_id.as_str());
    }
    m.push_str(17, &r.exec_id.to_string())
        .push_char(150, exec_type)
        .push_char(39, status_char(r.status))
        .push_str(55, r.symbol.as_str())
        .push_char(54, side)
        .push_uint(38, r.order_qty)
        .push_char(40, r.ord_type as u8 as char);
    if r.ord_type == OrdType::Limit && r.status != OrdStatus::Rejected {
        m.push_str(44, &from_ticks(r.price as i128, tick_nanos));
    }
    m.push_char(59, r.tif as u8 as char);
    if r.kind == ExecKind::Trade {
        m.push_uint(32, r.last_qty)
            .push_str(31, &from_ticks(r.last_px as i128, tick_nanos));
    }
    m.push_uint(151, r.leaves_qty)
        .push_uint(14, r.cum_qty)
        .push_str(6, &avg_px(r, tick_nanos))
        .push_str(60, &utc_timestamp());
    if r.status == OrdStatus::Rejected && r.reason != Reason::None {
        m.push_uint(103, r.reason.fix_code(false) as u64)
            .push_str(58, r.reason.text());
    }
    m
}

fn sync_policy(s: &str) -> Result<SyncPolicy, String> {
    match s {
        "every-write" => Ok(SyncPolicy::EveryWrite),
        "never" => Ok(SyncPolicy::Never),
        other => other
            .strip_prefix("every-")
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(NonZeroU32::new)
            .map(SyncPolicy::EveryN)
            .ok_or_else(|| {
                format!("fix.session_store_sync {other:?}: every-write, every-N or never")
            }),
    }
}

/// One acceptor per configured member, each with its file store under `<journal dir>/fix`.
pub async fn registry(
    config: &Config,
    app: Arc<Gateway>,
    store_dir: &Path,
) -> Result<Arc<AcceptorRegistry<Gateway>>, String> {
    let registry = Arc::new(AcceptorRegistry::new());
    let policy = sync_policy(&config.fix.session_store_sync)?;
    let venue = CompId::new(&config.fix.comp_id).map_err(|e| format!("fix.comp_id: {e}"))?;
    for s in &config.sessions {
        let member = CompId::new(&s.comp_id).map_err(|e| format!("session {}: {e}", s.comp_id))?;
        let session = SessionConfig::new(venue.clone(), member, "FIX.4.4")
            .with_heartbeat_interval(Duration::from_secs(config.fix.heartbeat_secs));
        let store_config = FileStoreConfig::try_new(store_dir, s.comp_id.clone())
            .map_err(|e| format!("session store {}: {e}", s.comp_id))?
            .with_create_if_missing(true)
            .with_sync_policy(policy);
        let store: Arc<dyn MessageStore> = Arc::new(
            FileStore::open(store_config)
                .await
                .map_err(|e| format!("session store {}: {e}", s.comp_id))?,
        );
        let acceptor = Acceptor::new(session, Arc::clone(&app))
            .with_store(store)
            .with_write_timeout(Duration::from_secs(5));
        registry
            .register(acceptor)
            .map_err(|e| format!("session {}: {e}", s.comp_id))?;
    }
    Ok(registry)
}

/// Accepts connections until the listener fails; each logged-on session gets a writer task.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<AcceptorRegistry<Gateway>>,
    app: Arc<Gateway>,
    router: Arc<Router>,
    pricing: Arc<HashMap<Symbol, u64>>,
    max_pending: usize,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("venue: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (registry, app, router, pricing) = (
            Arc::clone(&registry),
            Arc::clone(&app),
            Arc::clone(&router),
            Arc::clone(&pricing),
        );
        tokio::spawn(async move {
            let conn = match registry.serve(stream).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("venue: connection from {peer} refused: {e}");
                    return;
                }
            };
            let Some(session) = app.session_index(conn.session_id()) else {
                let _ = conn.logout_with_text("unknown session").await;
                return;
            };
            let (tx, mut rx) = mpsc::channel::<Report>(max_pending.max(1));
            router.attach(session, tx.clone());
            let weak = tx.downgrade();
            let writer = {
                let conn = conn.clone();
                tokio::spawn(async move {
                    while let Some(r) = rx.recv().await {
                        let tick = pricing.get(&r.symbol).copied().unwrap_or(10_000_000);
                        if conn.send(build_message(&conn, &r, tick)).await.is_err() {
                            return;
                        }
                    }
                    // the router dropped the queue: the client does not read
                    let _ = conn
                        .logout_with_text("disconnected: execution reports not being read")
                        .await;
                })
            };
            drop(tx);
            conn.wait_closed().await;
            if let Some(tx) = weak.upgrade() {
                router.detach(session, &tx);
            }
            writer.abort();
            eprintln!(
                "venue: session {} closed: {:?}",
                conn.session_id(),
                conn.close_reason()
            );
        });
    }
}
