//! Engine events as small frozen Python objects (`Accepted`, `Rejected`, `Fill`, `Cancelled`,
//! `Modified`, `Done`), each with `__match_args__` for `match` statements.

use engine_rs::{Event, RejectReason, Side};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

pub(crate) fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

pub(crate) fn side_code(side: Side) -> u8 {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// Snake-case name of a reject reason, as `Rejected.reason` and the batch counters spell it.
pub(crate) fn reason_name(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::ZeroQuantity => "zero_quantity",
        RejectReason::PriceOutOfBand => "price_out_of_band",
        RejectReason::DuplicateOrderId => "duplicate_order_id",
        RejectReason::UnknownOrderId => "unknown_order_id",
        RejectReason::UnknownSymbol => "unknown_symbol",
        RejectReason::BookFull => "book_full",
        RejectReason::FokNotFillable => "fok_not_fillable",
    }
}

/// Every reject reason, in code order (index = the reason's position in the batch counters).
pub(crate) const REASONS: [RejectReason; 7] = [
    RejectReason::ZeroQuantity,
    RejectReason::PriceOutOfBand,
    RejectReason::DuplicateOrderId,
    RejectReason::UnknownOrderId,
    RejectReason::UnknownSymbol,
    RejectReason::BookFull,
    RejectReason::FokNotFillable,
];

pub(crate) fn reason_index(reason: RejectReason) -> usize {
    match reason {
        RejectReason::ZeroQuantity => 0,
        RejectReason::PriceOutOfBand => 1,
        RejectReason::DuplicateOrderId => 2,
        RejectReason::UnknownOrderId => 3,
        RejectReason::UnknownSymbol => 4,
        RejectReason::BookFull => 5,
        RejectReason::FokNotFillable => 6,
    }
}

/// The order entered the book or started matching.
#[pyclass(module = "quant_engine._native", frozen, get_all, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: u64,
}

/// The request was refused; `reason` is a snake-case name such as `"duplicate_order_id"`.
#[pyclass(module = "quant_engine._native", frozen, get_all, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct Rejected {
    pub id: u64,
    pub reason: &'static str,
}

/// One trade between a resting maker and the incoming taker, at the maker's price.
#[pyclass(module = "quant_engine._native", frozen, get_all, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct Fill {
    pub seq: u64,
    pub maker_id: u64,
    pub taker_id: u64,
    pub price: i64,
    pub qty: u64,
    pub taker_side: &'static str,
}

/// A user cancel, or the dropped remainder of a market/IOC order; `remaining` never fills.
#[pyclass(module = "quant_engine._native", frozen, get_all, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct Cancelled {
    pub id: u64,
    pub remaining: u64,
}

/// The order now rests at `price` with `qty` open; `kept_priority` tells whether it kept its
/// place in the queue (same price, smaller quantity).
#[pyclass(module = "quant_engine._native", frozen, get_all, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct Modified {
    pub id: u64,
    pub price: i64,
    pub qty: u64,
    pub kept_priority: bool,
}

/// The order is completely filled (as maker or taker); `filled` is its lifetime filled qty.
#[pyclass(module = "quant_engine._native", frozen, get_all, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct Done {
    pub id: u64,
    pub filled: u64,
}

#[pymethods]
impl Accepted {
    #[new]
    fn new(id: u64) -> Self {
        Self { id }
    }
    #[classattr]
    fn __match_args__() -> (&'static str,) {
        ("id",)
    }
    fn __repr__(&self) -> String {
        format!("Accepted(id={})", self.id)
    }
}

#[pymethods]
impl Rejected {
    #[new]
    fn new(id: u64, reason: &str) -> PyResult<Self> {
        let reason = REASONS
            .iter()
            .map(|r| reason_name(*r))
            .find(|name| *name == reason)
            .ok_or_else(|| PyValueError::new_err(format!("unknown reject reason {reason:?}")))?;
        Ok(Self { id, reason })
    }
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("id", "reason")
    }
    fn __repr__(&self) -> String {
        format!("Rejected(id={}, reason='{}')", self.id, self.reason)
    }
}

#[pymethods]
impl Fill {
    #[new]
    fn new(
        seq: u64,
        maker_id: u64,
        taker_id: u64,
        price: i64,
        qty: u64,
        taker_side: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let taker_side = side_name(crate::parse::side(taker_side)?);
        Ok(Self {
            seq,
            maker_id,
            taker_id,
            price,
            qty,
            taker_side,
        })
    }
    #[classattr]
    fn __match_args__() -> (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ) {
        ("seq", "maker_id", "taker_id", "price", "qty", "taker_side")
    }
    fn __repr__(&self) -> String {
        format!(
            "Fill(seq={}, maker_id={}, taker_id={}, price={}, qty={}, taker_side='{}')",
            self.seq, self.maker_id, self.taker_id, self.price, self.qty, self.taker_side
        )
    }
}

#[pymethods]
impl Cancelled {
    #[new]
    fn new(id: u64, remaining: u64) -> Self {
        Self { id, remaining }
    }
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("id", "remaining")
    }
    fn __repr__(&self) -> String {
        format!("Cancelled(id={}, remaining={})", self.id, self.remaining)
    }
}

#[pymethods]
impl Modified {
    #[new]
    fn new(id: u64, price: i64, qty: u64, kept_priority: bool) -> Self {
        Self {
            id,
            price,
            qty,
            kept_priority,
        }
    }
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str, &'static str, &'static str) {
        ("id", "price", "qty", "kept_priority")
    }
    fn __repr__(&self) -> String {
        let kept = if self.kept_priority { "True" } else { "False" };
        format!(
            "Modified(id={}, price={}, qty={}, kept_priority={})",
            self.id, self.price, self.qty, kept
        )
    }
}

#[pymethods]
impl Done {
    #[new]
    fn new(id: u64, filled: u64) -> Self {
        Self { id, filled }
    }
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("id", "filled")
    }
    fn __repr__(&self) -> String {
        format!("Done(id={}, filled={})", self.id, self.filled)
    }
}

fn event_to_py<'py>(py: Python<'py>, event: &Event) -> PyResult<Bound<'py, PyAny>> {
    Ok(match *event {
        Event::Accepted { id } => Bound::new(py, Accepted { id })?.into_any(),
        Event::Rejected { id, reason } => Bound::new(
            py,
            Rejected {
                id,
                reason: reason_name(reason),
            },
        )?
        .into_any(),
        Event::Fill {
            seq,
            maker_id,
            taker_id,
            price,
            qty,
            taker_side,
        } => Bound::new(
            py,
            Fill {
                seq,
                maker_id,
                taker_id,
                price,
                qty,
                taker_side: side_name(taker_side),
            },
        )?
        .into_any(),
        Event::Cancelled { id, remaining } => {
            Bound::new(py, Cancelled { id, remaining })?.into_any()
        }
        Event::Modified {
            id,
            price,
            qty,
            kept_priority,
        } => Bound::new(
            py,
            Modified {
                id,
                price,
                qty,
                kept_priority,
            },
        )?
        .into_any(),
        Event::Done { id, filled } => Bound::new(py, Done { id, filled })?.into_any(),
    })
}

/// The events as a Python list; `events` is cleared (its capacity kept for the next call).
pub(crate) fn drain_to_list<'py>(
    py: Python<'py>,
    events: &mut Vec<Event>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for event in events.iter() {
        list.append(event_to_py(py, event)?)?;
    }
    events.clear();
    Ok(list)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Accepted>()?;
    m.add_class::<Rejected>()?;
    m.add_class::<Fill>()?;
    m.add_class::<Cancelled>()?;
    m.add_class::<Modified>()?;
    m.add_class::<Done>()?;
    Ok(())
}
