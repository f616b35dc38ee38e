//! `quant_engine._native`: the PyO3 binding of the `engine_rs` matching engine.
//!
//! Argument errors (unknown side/order-type strings or codes, negative ids or quantities, limit
//! prices outside the book's band, unknown symbols, malformed NumPy arrays) raise `ValueError`
//! (`TypeError` for wrong Python types) before anything reaches the book. Business rejects that
//! depend on the book's state (duplicate or unknown order id, zero quantity, book full, FOK not
//! fillable) come back as `Rejected` events, and as counts in the batch results.

// the #[pymethods] mirror the Python signatures (six command columns, symbol + order fields)
#![allow(clippy::too_many_arguments)]

use pyo3::prelude::*;

mod batch;
mod book;
mod events;
mod parse;

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    events::register(m)?;
    m.add_class::<book::PyOrderBook>()?;
    m.add_class::<book::PyEngine>()?;
    m.add_function(wrap_pyfunction!(book::clock_overhead_ns, m)?)?;
    m.add("SUBMIT", batch::SUBMIT)?;
    m.add("CANCEL", batch::CANCEL)?;
    m.add("MODIFY", batch::MODIFY)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
