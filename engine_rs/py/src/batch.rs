//! The NumPy batch path: array checks, the all-or-nothing validation pass, the loop that runs
//! with the GIL released, and the result columns.

use std::time::Instant;

use engine_rs::{BookConfig, Event, NewOrder, OrderType, Price, Qty};
use numpy::{
    Element, PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::events::{reason_index, reason_name, side_code, REASONS};
use crate::parse::{in_band, is_priced, order_type_from_code, side_from_code};

pub(crate) const SUBMIT: u8 = 0;
pub(crate) const CANCEL: u8 = 1;
pub(crate) const MODIFY: u8 = 2;

/// `obj` as a read-only, C-contiguous 1-D array of `T`, or a `ValueError` naming the argument.
pub(crate) fn column<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    dtype: &str,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    let Ok(untyped) = obj.cast::<PyUntypedArray>() else {
        return Err(PyValueError::new_err(format!(
            "{name} must be a 1-D numpy array of dtype {dtype}, got {}",
            obj.get_type().name()?
        )));
    };
    let Ok(typed) = obj.cast::<PyArray1<T>>() else {
        return Err(PyValueError::new_err(format!(
            "{name} must be a 1-D numpy array of dtype {dtype}, got a {}-D array of dtype {} \
             (convert with np.asarray({name}, dtype=np.{dtype}))",
            untyped.ndim(),
            untyped.dtype().str()?
        )));
    };
    let readonly = typed.try_readonly().map_err(|err| {
        PyValueError::new_err(format!("{name} is mutably borrowed elsewhere: {err}"))
    })?;
    if readonly.as_slice().is_err() {
        return Err(PyValueError::new_err(format!(
            "{name} must be C-contiguous (use np.ascontiguousarray({name}))"
        )));
    }
    Ok(readonly)
}

/// Borrowed command columns of one batch (all of the same length).
pub(crate) struct Columns<'a> {
    pub symbols: Option<&'a [u32]>,
    pub kind: &'a [u8],
    pub ids: &'a [u64],
    pub sides: &'a [u8],
    pub types: &'a [u8],
    pub prices: &'a [i64],
    pub qtys: &'a [u64],
}

/// The six command arrays, type-checked; `symbols` too for the engine.
pub(crate) struct Arrays<'py> {
    pub symbols: Option<PyReadonlyArray1<'py, u32>>,
    pub kind: PyReadonlyArray1<'py, u8>,
    pub ids: PyReadonlyArray1<'py, u64>,
    pub sides: PyReadonlyArray1<'py, u8>,
    pub types: PyReadonlyArray1<'py, u8>,
    pub prices: PyReadonlyArray1<'py, i64>,
    pub qtys: PyReadonlyArray1<'py, u64>,
}

impl<'py> Arrays<'py> {
    pub(crate) fn new(
        symbols: Option<&Bound<'py, PyAny>>,
        kind: &Bound<'py, PyAny>,
        ids: &Bound<'py, PyAny>,
        sides: &Bound<'py, PyAny>,
        types: &Bound<'py, PyAny>,
        prices: &Bound<'py, PyAny>,
        qtys: &Bound<'py, PyAny>,
    ) -> PyResult<Self> {
        let arrays = Self {
            symbols: symbols
                .map(|s| column::<u32>(s, "symbols", "uint32"))
                .transpose()?,
            kind: column(kind, "kind", "uint8")?,
            ids: column(ids, "ids", "uint64")?,
            sides: column(sides, "sides", "uint8")?,
            types: column(types, "types", "uint8")?,
            prices: column(prices, "prices", "int64")?,
            qtys: column(qtys, "qtys", "uint64")?,
        };
        let n = arrays.kind.len();
        let mut lengths = vec![
            ("ids", arrays.ids.len()),
            ("sides", arrays.sides.len()),
            ("types", arrays.types.len()),
            ("prices", arrays.prices.len()),
            ("qtys", arrays.qtys.len()),
        ];
        if let Some(s) = &arrays.symbols {
            lengths.insert(0, ("symbols", s.len()));
        }
        if let Some((name, len)) = lengths.iter().find(|(_, len)| *len != n) {
            return Err(PyValueError::new_err(format!(
                "all command arrays must have the same length: kind has {n}, {name} has {len}"
            )));
        }
        Ok(arrays)
    }

    pub(crate) fn columns(&self) -> Columns<'_> {
        // contiguity was checked in `column`
        Columns {
            symbols: self.symbols.as_ref().map(|s| s.as_slice().unwrap()),
            kind: self.kind.as_slice().unwrap(),
            ids: self.ids.as_slice().unwrap(),
            sides: self.sides.as_slice().unwrap(),
            types: self.types.as_slice().unwrap(),
            prices: self.prices.as_slice().unwrap(),
            qtys: self.qtys.as_slice().unwrap(),
        }
    }
}

impl Columns<'_> {
    pub(crate) fn len(&self) -> usize {
        self.kind.len()
    }

    /// The first argument error of the batch, if any: unknown kind/side/type codes, unknown
    /// symbols, and limit prices outside the band (the same checks as the single-order API).
    pub(crate) fn validate(&self, configs: &[BookConfig]) -> Result<(), String> {
        for i in 0..self.len() {
            let symbol = self.symbols.map_or(0, |s| s[i] as usize);
            let Some(config) = configs.get(symbol) else {
                return Err(format!(
                    "row {i}: unknown symbol {symbol} (the engine has {} symbols)",
                    configs.len()
                ));
            };
            match self.kind[i] {
                SUBMIT => {
                    if side_from_code(self.sides[i]).is_none() {
                        return Err(format!(
                            "row {i}: invalid side code {}: expected 0 (buy) or 1 (sell)",
                            self.sides[i]
                        ));
                    }
                    let Some(order_type) = order_type_from_code(self.types[i]) else {
                        return Err(format!(
                            "row {i}: invalid order type code {}: expected 0 (limit), \
                             1 (market), 2 (ioc) or 3 (fok)",
                            self.types[i]
                        ));
                    };
                    if is_priced(order_type) && !in_band(config, self.prices[i]) {
                        return Err(band_error(i, self.prices[i], config));
                    }
                }
                CANCEL => {}
                MODIFY => {
                    if !in_band(config, self.prices[i]) {
                        return Err(band_error(i, self.prices[i], config));
                    }
                }
                other => {
                    return Err(format!(
                        "row {i}: invalid kind {other}: expected 0 (submit), 1 (cancel) or \
                         2 (modify)"
                    ))
                }
            }
        }
        Ok(())
    }

    /// Row `i` as a new order (only for validated submit rows).
    #[inline]
    pub(crate) fn order(&self, i: usize) -> NewOrder {
        NewOrder {
            id: self.ids[i],
            side: side_from_code(self.sides[i]).unwrap_or(engine_rs::Side::Buy),
            order_type: order_type_from_code(self.types[i]).unwrap_or(OrderType::Limit),
            price: self.prices[i] as Price,
            qty: self.qtys[i] as Qty,
        }
    }
}

fn band_error(row: usize, price: i64, config: &BookConfig) -> String {
    format!(
        "row {row}: price {price} is outside the book's band [{}, {}]",
        config.min_price, config.max_price
    )
}

/// Fills as columns plus counts of the other events, accumulated over a batch.
#[derive(Default)]
pub(crate) struct BatchOut {
    seq: Vec<u64>,
    maker_id: Vec<u64>,
    taker_id: Vec<u64>,
    price: Vec<i64>,
    qty: Vec<u64>,
    taker_side: Vec<u8>,
    accepted: u64,
    rejected: u64,
    rejects: [u64; REASONS.len()],
    cancelled: u64,
    modified: u64,
    done: u64,
}

impl BatchOut {
    pub(crate) fn with_capacity(ops: usize) -> Self {
        let cap = ops / 4 + 16;
        Self {
            seq: Vec::with_capacity(cap),
            maker_id: Vec::with_capacity(cap),
            taker_id: Vec::with_capacity(cap),
            price: Vec::with_capacity(cap),
            qty: Vec::with_capacity(cap),
            taker_side: Vec::with_capacity(cap),
            ..Self::default()
        }
    }

    #[inline]
    pub(crate) fn absorb(&mut self, events: &[Event]) {
        for event in events {
            match *event {
                Event::Accepted { .. } => self.accepted += 1,
                Event::Rejected { reason, .. } => {
                    self.rejected += 1;
                    self.rejects[reason_index(reason)] += 1;
                }
                Event::Fill {
                    seq,
                    maker_id,
                    taker_id,
                    price,
                    qty,
                    taker_side,
                } => {
                    self.seq.push(seq);
                    self.maker_id.push(maker_id);
                    self.taker_id.push(taker_id);
                    self.price.push(price);
                    self.qty.push(qty);
                    self.taker_side.push(side_code(taker_side));
                }
                Event::Cancelled { .. } => self.cancelled += 1,
                Event::Modified { .. } => self.modified += 1,
                Event::Done { .. } => self.done += 1,
            }
        }
    }

    pub(crate) fn into_dict(self, py: Python<'_>, ops: usize) -> PyResult<Bound<'_, PyDict>> {
        let out = PyDict::new(py);
        out.set_item("ops", ops)?;
        out.set_item("fills", self.seq.len())?;
        out.set_item("accepted", self.accepted)?;
        out.set_item("rejected", self.rejected)?;
        out.set_item("cancelled", self.cancelled)?;
        out.set_item("modified", self.modified)?;
        out.set_item("done", self.done)?;
        let by_reason = PyDict::new(py);
        for (reason, count) in REASONS.iter().zip(self.rejects) {
            by_reason.set_item(reason_name(*reason), count)?;
        }
        out.set_item("rejects_by_reason", by_reason)?;
        out.set_item("seq", PyArray1::from_vec(py, self.seq))?;
        out.set_item("maker_id", PyArray1::from_vec(py, self.maker_id))?;
        out.set_item("taker_id", PyArray1::from_vec(py, self.taker_id))?;
        out.set_item("price", PyArray1::from_vec(py, self.price))?;
        out.set_item("qty", PyArray1::from_vec(py, self.qty))?;
        out.set_item("taker_side", PyArray1::from_vec(py, self.taker_side))?;
        Ok(out)
    }
}

/// Runs `apply` for every row, absorbing its events into a `BatchOut`.
#[inline]
pub(crate) fn run<F>(n: usize, events: &mut Vec<Event>, mut apply: F) -> BatchOut
where
    F: FnMut(usize, &mut Vec<Event>),
{
    let mut out = BatchOut::with_capacity(n);
    for i in 0..n {
        apply(i, events);
        out.absorb(events);
        events.clear();
    }
    out
}

/// Runs `apply` for every row and returns each row's wall time in nanoseconds (one
/// `Instant::now()` pair per row, the event buffer's reset included).
#[inline]
pub(crate) fn run_timed<F>(n: usize, events: &mut Vec<Event>, mut apply: F) -> Vec<u64>
where
    F: FnMut(usize, &mut Vec<Event>),
{
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        apply(i, events);
        events.clear();
        samples.push(start.elapsed().as_nanos() as u64);
    }
    samples
}

/// Median cost of one `Instant::now()` pair, in nanoseconds (the floor of `run_timed`'s samples).
pub(crate) fn clock_overhead_ns() -> u64 {
    let mut samples: Vec<u64> = (0..10_001)
        .map(|_| {
            let start = Instant::now();
            start.elapsed().as_nanos() as u64
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}
