//! `OrderBook` (one instrument) and `Engine` (many, by symbol id) as Python classes.

use engine_rs::{
    BookConfig, Command, Engine as CoreEngine, Event, Level, MatchingBook, NewOrder,
    OrderBook as CoreBook, Side, SymbolId,
};
use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::batch::{self, Arrays, CANCEL, MODIFY, SUBMIT};
use crate::events::drain_to_list;
use crate::parse;

/// A validated new order from Python arguments (band checked against `config`).
fn new_order(
    config: &BookConfig,
    id: &Bound<'_, PyAny>,
    side: &Bound<'_, PyAny>,
    order_type: &Bound<'_, PyAny>,
    price: i64,
    qty: &Bound<'_, PyAny>,
) -> PyResult<NewOrder> {
    let order = NewOrder {
        id: parse::unsigned(id, "id")?,
        side: parse::side(side)?,
        order_type: parse::order_type(order_type)?,
        price,
        qty: parse::unsigned(qty, "qty")?,
    };
    if parse::is_priced(order.order_type) {
        parse::check_band(config, price)?;
    }
    Ok(order)
}

fn snapshot<'py, B: MatchingBook>(
    py: Python<'py>,
    book: &B,
    levels: usize,
    buf: &mut Vec<Level>,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (key, side) in [
        (intern!(py, "bids"), Side::Buy),
        (intern!(py, "asks"), Side::Sell),
    ] {
        buf.clear();
        book.depth(side, levels, buf);
        let rows = PyList::empty(py);
        for level in buf.iter() {
            rows.append((level.price, level.qty, level.orders))?;
        }
        out.set_item(key, rows)?;
    }
    buf.clear();
    Ok(out)
}

fn order_view<'py, B: MatchingBook>(
    py: Python<'py>,
    book: &B,
    id: u64,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let Some(view) = book.order(id) else {
        return Ok(None);
    };
    let out = PyDict::new(py);
    out.set_item(intern!(py, "id"), view.id)?;
    let side = match view.side {
        Side::Buy => intern!(py, "buy"),
        Side::Sell => intern!(py, "sell"),
    };
    out.set_item(intern!(py, "side"), side)?;
    out.set_item(intern!(py, "price"), view.price)?;
    out.set_item(intern!(py, "remaining"), view.remaining)?;
    out.set_item(intern!(py, "filled"), view.filled)?;
    Ok(Some(out))
}

/// A single-instrument limit order book with price-time priority.
#[pyclass(module = "quant_engine._native", name = "OrderBook")]
pub struct PyOrderBook {
    book: CoreBook,
    config: BookConfig,
    // reused by every call: the single-order path allocates no Vec of its own
    events: Vec<Event>,
    levels: Vec<Level>,
}

#[pymethods]
impl PyOrderBook {
    #[new]
    #[pyo3(signature = (min_price, max_price, max_orders = 100_000))]
    fn new(min_price: i64, max_price: i64, max_orders: i64) -> PyResult<Self> {
        let config = parse::book_config(min_price, max_price, max_orders)?;
        Ok(Self {
            book: CoreBook::new(config),
            config,
            events: Vec::with_capacity(64),
            levels: Vec::with_capacity(64),
        })
    }

    #[getter]
    fn min_price(&self) -> i64 {
        self.config.min_price
    }

    #[getter]
    fn max_price(&self) -> i64 {
        self.config.max_price
    }

    #[getter]
    fn max_orders(&self) -> usize {
        self.config.max_orders
    }

    fn submit<'py>(
        &mut self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
        side: &Bound<'py, PyAny>,
        order_type: &Bound<'py, PyAny>,
        price: i64,
        qty: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let order = new_order(&self.config, id, side, order_type, price, qty)?;
        self.book.submit(order, &mut self.events);
        drain_to_list(py, &mut self.events)
    }

    fn cancel<'py>(
        &mut self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let id = parse::unsigned(id, "id")?;
        self.book.cancel(id, &mut self.events);
        drain_to_list(py, &mut self.events)
    }

    fn modify<'py>(
        &mut self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
        price: i64,
        qty: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let id = parse::unsigned(id, "id")?;
        let qty = parse::unsigned(qty, "qty")?;
        parse::check_band(&self.config, price)?;
        self.book.modify(id, price, qty, &mut self.events);
        drain_to_list(py, &mut self.events)
    }

    fn best_bid(&self) -> Option<(i64, u64)> {
        self.book.best_bid()
    }

    fn best_ask(&self) -> Option<(i64, u64)> {
        self.book.best_ask()
    }

    #[pyo3(signature = (levels = 10))]
    fn snapshot<'py>(&mut self, py: Python<'py>, levels: usize) -> PyResult<Bound<'py, PyDict>> {
        snapshot(py, &self.book, levels, &mut self.levels)
    }

    fn order<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        order_view(py, &self.book, parse::unsigned(id, "id")?)
    }

    fn __len__(&self) -> usize {
        self.book.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "OrderBook(min_price={}, max_price={}, max_orders={}, orders={})",
            self.config.min_price,
            self.config.max_price,
            self.config.max_orders,
            self.book.len()
        )
    }

    fn process_batch<'py>(
        &mut self,
        py: Python<'py>,
        kind: &Bound<'py, PyAny>,
        ids: &Bound<'py, PyAny>,
        sides: &Bound<'py, PyAny>,
        types: &Bound<'py, PyAny>,
        prices: &Bound<'py, PyAny>,
        qtys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let arrays = Arrays::new(None, kind, ids, sides, types, prices, qtys)?;
        let cols = arrays.columns();
        let n = cols.len();
        let Self {
            book,
            config,
            events,
            ..
        } = self;
        let out = py.detach(|| {
            cols.validate(std::slice::from_ref(config))?;
            Ok::<_, String>(batch::run(n, events, |i, ev| {
                apply_book(book, &cols, i, ev)
            }))
        });
        out.map_err(PyValueError::new_err)?.into_dict(py, n)
    }

    fn latency_profile<'py>(
        &mut self,
        py: Python<'py>,
        kind: &Bound<'py, PyAny>,
        ids: &Bound<'py, PyAny>,
        sides: &Bound<'py, PyAny>,
        types: &Bound<'py, PyAny>,
        prices: &Bound<'py, PyAny>,
        qtys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let arrays = Arrays::new(None, kind, ids, sides, types, prices, qtys)?;
        let cols = arrays.columns();
        let n = cols.len();
        let Self {
            book,
            config,
            events,
            ..
        } = self;
        let samples = py.detach(|| {
            cols.validate(std::slice::from_ref(config))?;
            Ok::<_, String>(batch::run_timed(n, events, |i, ev| {
                apply_book(book, &cols, i, ev)
            }))
        });
        Ok(PyArray1::from_vec(
            py,
            samples.map_err(PyValueError::new_err)?,
        ))
    }
}

#[inline]
fn apply_book(book: &mut CoreBook, cols: &batch::Columns<'_>, i: usize, events: &mut Vec<Event>) {
    match cols.kind[i] {
        SUBMIT => book.submit(cols.order(i), events),
        CANCEL => book.cancel(cols.ids[i], events),
        MODIFY => book.modify(cols.ids[i], cols.prices[i], cols.qtys[i], events),
        _ => unreachable!("validated"),
    }
}

#[inline]
fn command(cols: &batch::Columns<'_>, i: usize) -> Command {
    let symbol = cols.symbols.map_or(0, |s| s[i]) as SymbolId;
    match cols.kind[i] {
        SUBMIT => Command::Submit {
            symbol,
            order: cols.order(i),
        },
        CANCEL => Command::Cancel {
            symbol,
            id: cols.ids[i],
        },
        _ => Command::Modify {
            symbol,
            id: cols.ids[i],
            price: cols.prices[i],
            qty: cols.qtys[i],
        },
    }
}

/// Many books addressed by the symbol ids `add_symbol` hands out (0, 1, 2, ...).
#[pyclass(module = "quant_engine._native", name = "Engine")]
pub struct PyEngine {
    engine: CoreEngine,
    configs: Vec<BookConfig>,
    events: Vec<Event>,
    levels: Vec<Level>,
}

impl PyEngine {
    fn config(&self, symbol: &Bound<'_, PyAny>) -> PyResult<(SymbolId, &BookConfig)> {
        let raw = parse::unsigned(symbol, "symbol")?;
        usize::try_from(raw)
            .ok()
            .and_then(|index| self.configs.get(index))
            .map(|config| (raw as SymbolId, config))
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "unknown symbol {raw} (the engine has {} symbols; add_symbol creates them)",
                    self.configs.len()
                ))
            })
    }

    fn book(&self, symbol: &Bound<'_, PyAny>) -> PyResult<&CoreBook> {
        let (id, _) = self.config(symbol)?;
        self.engine
            .book(id)
            .ok_or_else(|| PyValueError::new_err(format!("unknown symbol {id}")))
    }
}

#[pymethods]
impl PyEngine {
    #[new]
    fn new() -> Self {
        Self {
            engine: CoreEngine::new(),
            configs: Vec::new(),
            events: Vec::with_capacity(64),
            levels: Vec::with_capacity(64),
        }
    }

    #[pyo3(signature = (min_price, max_price, max_orders = 100_000))]
    fn add_symbol(&mut self, min_price: i64, max_price: i64, max_orders: i64) -> PyResult<u32> {
        let config = parse::book_config(min_price, max_price, max_orders)?;
        let id = self.engine.add_symbol(config);
        if id as usize != self.configs.len() {
            return Err(PyValueError::new_err(format!(
                "internal error: engine returned symbol id {id}, expected {}",
                self.configs.len()
            )));
        }
        self.configs.push(config);
        Ok(id)
    }

    fn submit<'py>(
        &mut self,
        py: Python<'py>,
        symbol: &Bound<'py, PyAny>,
        id: &Bound<'py, PyAny>,
        side: &Bound<'py, PyAny>,
        order_type: &Bound<'py, PyAny>,
        price: i64,
        qty: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let (symbol, config) = self.config(symbol)?;
        let order = new_order(config, id, side, order_type, price, qty)?;
        self.engine
            .process(Command::Submit { symbol, order }, &mut self.events);
        drain_to_list(py, &mut self.events)
    }

    fn cancel<'py>(
        &mut self,
        py: Python<'py>,
        symbol: &Bound<'py, PyAny>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let (symbol, _) = self.config(symbol)?;
        let id = parse::unsigned(id, "id")?;
        self.engine
            .process(Command::Cancel { symbol, id }, &mut self.events);
        drain_to_list(py, &mut self.events)
    }

    fn modify<'py>(
        &mut self,
        py: Python<'py>,
        symbol: &Bound<'py, PyAny>,
        id: &Bound<'py, PyAny>,
        price: i64,
        qty: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let (symbol, config) = self.config(symbol)?;
        parse::check_band(config, price)?;
        let id = parse::unsigned(id, "id")?;
        let qty = parse::unsigned(qty, "qty")?;
        self.engine.process(
            Command::Modify {
                symbol,
                id,
                price,
                qty,
            },
            &mut self.events,
        );
        drain_to_list(py, &mut self.events)
    }

    fn best_bid(&self, symbol: &Bound<'_, PyAny>) -> PyResult<Option<(i64, u64)>> {
        Ok(self.book(symbol)?.best_bid())
    }

    fn best_ask(&self, symbol: &Bound<'_, PyAny>) -> PyResult<Option<(i64, u64)>> {
        Ok(self.book(symbol)?.best_ask())
    }

    #[pyo3(signature = (symbol, levels = 10))]
    fn snapshot<'py>(
        &mut self,
        py: Python<'py>,
        symbol: &Bound<'py, PyAny>,
        levels: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let mut buf = std::mem::take(&mut self.levels);
        let out = snapshot(py, self.book(symbol)?, levels, &mut buf);
        self.levels = buf;
        out
    }

    fn order<'py>(
        &self,
        py: Python<'py>,
        symbol: &Bound<'py, PyAny>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        order_view(py, self.book(symbol)?, parse::unsigned(id, "id")?)
    }

    fn order_count(&self, symbol: &Bound<'_, PyAny>) -> PyResult<usize> {
        Ok(self.book(symbol)?.len())
    }

    fn __len__(&self) -> usize {
        self.configs.len()
    }

    fn __repr__(&self) -> String {
        format!("Engine(symbols={})", self.configs.len())
    }

    fn process_batch<'py>(
        &mut self,
        py: Python<'py>,
        symbols: &Bound<'py, PyAny>,
        kind: &Bound<'py, PyAny>,
        ids: &Bound<'py, PyAny>,
        sides: &Bound<'py, PyAny>,
        types: &Bound<'py, PyAny>,
        prices: &Bound<'py, PyAny>,
        qtys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let arrays = Arrays::new(Some(symbols), kind, ids, sides, types, prices, qtys)?;
        let cols = arrays.columns();
        let n = cols.len();
        let Self {
            engine,
            configs,
            events,
            ..
        } = self;
        let out = py.detach(|| {
            cols.validate(configs)?;
            Ok::<_, String>(batch::run(n, events, |i, ev| {
                engine.process(command(&cols, i), ev)
            }))
        });
        out.map_err(PyValueError::new_err)?.into_dict(py, n)
    }
}

/// Median cost in nanoseconds of the `Instant::now()` pair that wraps each
/// `latency_profile` sample (the floor under every sample).
#[pyfunction]
pub fn clock_overhead_ns(py: Python<'_>) -> u64 {
    py.detach(batch::clock_overhead_ns)
}
