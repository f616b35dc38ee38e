//! `venue`: a trading venue on the engine_rs matching engine.
//!
//! * [`gateway`]: FIX 4.4 acceptor sessions (IronFix's session layer and codec) that parse
//!   NewOrderSingle / OrderCancelRequest / OrderCancelReplaceRequest into [`command::Command`]s
//!   and publish them into the input ring;
//! * [`sequencer`]: the LMAX pattern on the `disruptor` crate: one core thread takes batches
//!   from the input ring, appends them to the [`journal`] (group commit), applies them to the
//!   [`core::VenueCore`] and publishes reports and level changes into the output ring, read by
//!   the report dispatcher (back to the FIX sessions) and the [`md`] publisher (SBE over UDP);
//! * [`journal`]: records, snapshots and recovery (state hash checked);
//! * [`sbe`] / [`md`]: the market-data codec from `schema/market_data.xml`, the publisher and the
//!   subscriber that rebuilds books and recovers from gaps.
#![deny(unsafe_code)]

pub mod command;
pub mod config;
pub mod core;
pub mod fix_parse;
pub mod fuzzing;
#[cfg(feature = "server")]
pub mod gateway;
pub mod journal;
pub mod md;
pub mod sbe;
#[cfg(feature = "server")]
pub mod sequencer;
