//! `engine_rs`: a single-threaded, deterministic, price-time priority matching engine.
//!
//! * [`OrderBook`] — the fast book: tick-indexed level arrays, an intrusive FIFO arena, a fixed
//!   id map and a bitmap of non-empty levels; no heap allocation after construction.
//! * [`reference::ReferenceBook`] — the obviously-correct oracle (BTreeMap + VecDeque + HashMap).
//! * [`Engine`] — routes [`Command`]s to per-symbol books in sequence (LMAX pattern).
//! * [`fuzzing`] — the differential harness shared by the proptests and the libFuzzer target.
//!
//! Event semantics (identical in both books) are documented in `engine_rs/README.md`.
#![deny(unsafe_code)]

mod arena;
mod bitset;
mod book;
mod engine;
pub mod fuzzing;
mod idmap;
pub mod reference;
mod types;

pub use book::{OrderBook, MAX_BAND};
pub use engine::Engine;
pub use types::*;
