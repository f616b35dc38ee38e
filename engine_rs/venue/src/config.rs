//! The venue's configuration file (TOML). Every field has a default except the symbol list;
//! `venue.toml` in this folder is the documented example.

use crate::command::Symbol;
use crate::core::Listing;
use crate::journal::FsyncPolicy;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub fix: FixConfig,
    #[serde(default)]
    pub journal: JournalConfig,
    #[serde(default)]
    pub market_data: MarketDataConfig,
    /// The members allowed to log on: their SenderCompID (49).
    pub sessions: Vec<SessionEntry>,
    pub symbols: Vec<SymbolEntry>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FixConfig {
    pub listen: SocketAddr,
    /// The venue's CompID (the members' TargetCompID).
    pub comp_id: String,
    pub heartbeat_secs: u64,
    /// Execution reports queued for one session before the venue decides the client is not
    /// reading and disconnects it.
    pub max_pending_reports: usize,
    /// Session stores' fsync: "every-write", "every-N" (N writes) or "never" (the default:
    /// written, not fsync'd, as QuickFIX's FileStore does; the command journal is the fsync'd
    /// record of the orders).
    pub session_store_sync: String,
}

impl Default for FixConfig {
    fn default() -> Self {
        FixConfig {
            listen: "127.0.0.1:9878".parse().expect("address"),
            comp_id: "VENUE".into(),
            heartbeat_secs: 30,
            max_pending_reports: 65_536,
            session_store_sync: "never".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    pub dir: PathBuf,
    /// "batch" (group commit, the default) or "none".
    pub fsync: String,
    pub max_batch: usize,
    /// A snapshot every this many commands (0: only at shutdown).
    pub snapshot_every: u64,
    pub ring_size: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            dir: PathBuf::from("data/venue"),
            fsync: "batch".into(),
            max_batch: 512,
            snapshot_every: 1_000_000,
            ring_size: 65_536,
        }
    }
}

impl JournalConfig {
    pub fn policy(&self) -> Result<FsyncPolicy, String> {
        let max_batch = self.max_batch.max(1);
        match self.fsync.as_str() {
            "batch" => Ok(FsyncPolicy::Batch { max_batch }),
            "none" => Ok(FsyncPolicy::Never { max_batch }),
            other => Err(format!(
                "journal.fsync must be \"batch\" or \"none\", not {other:?}"
            )),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketDataConfig {
    /// Where the L2 feed goes: 127.0.0.1 here; a multicast group in a deployment.
    pub destination: SocketAddr,
    pub bind: SocketAddr,
    pub snapshot_ms: u64,
    pub multicast_ttl: u32,
}

impl Default for MarketDataConfig {
    fn default() -> Self {
        MarketDataConfig {
            destination: "127.0.0.1:9879".parse().expect("address"),
            bind: "127.0.0.1:0".parse().expect("address"),
            snapshot_ms: 1000,
            multicast_ttl: 1,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionEntry {
    pub comp_id: String,
}

/// A listed symbol. Prices are decimal strings; the band is where orders may be priced.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymbolEntry {
    pub symbol: String,
    #[serde(default = "default_tick")]
    pub tick: String,
    pub min_price: String,
    pub max_price: String,
    #[serde(default = "default_max_orders")]
    pub max_orders: usize,
}

fn default_tick() -> String {
    "0.01".into()
}

fn default_max_orders() -> usize {
    100_000
}

/// A symbol as the gateway prices it: the tick in units of 1e-9.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pricing {
    pub symbol: Symbol,
    pub tick_nanos: u64,
}

/// `"101.25"` in units of 1e-9 (at most 9 decimals), or `None` for anything else.
pub fn decimal_nanos(s: &str) -> Option<i128> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > 9
        || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
        || int.len() > 18
    {
        return None;
    }
    let int: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..9 {
        f *= 10;
    }
    let v = int * 1_000_000_000 + f;
    Some(if neg { -v } else { v })
}

/// A decimal price in ticks: `Err(true)` when it is not a multiple of the tick.
pub fn to_ticks(price: &str, tick_nanos: u64) -> Result<i64, bool> {
    let v = decimal_nanos(price).ok_or(false)?;
    let t = tick_nanos as i128;
    if v % t != 0 {
        return Err(true);
    }
    i64::try_from(v / t).map_err(|_| false)
}

/// Ticks as a decimal string with the tick's number of decimals.
pub fn from_ticks(ticks: i128, tick_nanos: u64) -> String {
    let v = ticks * tick_nanos as i128;
    let decimals = (0..=9)
        .find(|d| tick_nanos.is_multiple_of(10u64.pow(9 - d)))
        .unwrap_or(9);
    let scale = 10i128.pow(9 - decimals);
    let (sign, v) = if v < 0 { ("-", -v) } else { ("", v) };
    let units = v / scale;
    let p = 10i128.pow(decimals);
    if decimals == 0 {
        format!("{sign}{units}")
    } else {
        format!(
            "{sign}{}.{:0w$}",
            units / p,
            units % p,
            w = decimals as usize
        )
    }
}

impl Config {
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let c: Config = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        c.listings()?;
        c.journal.policy()?;
        Ok(c)
    }

    /// The core's listings and the gateway's pricing, in configuration order.
    pub fn listings(&self) -> Result<(Vec<Listing>, Vec<Pricing>), String> {
        let mut listings = Vec::new();
        let mut pricing = Vec::new();
        for s in &self.symbols {
            let symbol = Symbol::new(&s.symbol)
                .filter(|x| !x.is_empty())
                .ok_or_else(|| format!("symbol {:?}: 1 to 16 printable characters", s.symbol))?;
            let tick = decimal_nanos(&s.tick).filter(|t| *t > 0).ok_or_else(|| {
                format!("{}: tick {:?} is not a positive decimal", s.symbol, s.tick)
            })? as u64;
            let band = |p: &str| {
                to_ticks(p, tick)
                    .map_err(|_| format!("{}: {p:?} is not a price on the tick", s.symbol))
            };
            let (min_price, max_price) = (band(&s.min_price)?, band(&s.max_price)?);
            if min_price > max_price || (max_price - min_price) as u64 >= engine_rs::MAX_BAND {
                return Err(format!(
                    "{}: bad band {}..{}",
                    s.symbol, s.min_price, s.max_price
                ));
            }
            if listings.iter().any(|l: &Listing| l.symbol == symbol) {
                return Err(format!("{} listed twice", s.symbol));
            }
            listings.push(Listing {
                symbol,
                min_price,
                max_price,
                max_orders: s.max_orders,
            });
            pricing.push(Pricing {
                symbol,
                tick_nanos: tick,
            });
        }
        Ok((listings, pricing))
    }

    pub fn snapshot_interval(&self) -> Duration {
        Duration::from_millis(self.market_data.snapshot_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_prices_convert_to_ticks_exactly_and_back() {
        assert_eq!(to_ticks("101.25", 10_000_000), Ok(10125));
        assert_eq!(to_ticks("101.255", 10_000_000), Err(true));
        assert_eq!(to_ticks("abc", 10_000_000), Err(false));
        assert_eq!(to_ticks("-0.05", 10_000_000), Ok(-5));
        assert_eq!(from_ticks(10125, 10_000_000), "101.25");
        assert_eq!(from_ticks(3, 5_000_000), "0.015");
        assert_eq!(from_ticks(7, 1_000_000_000), "7");
    }
}
