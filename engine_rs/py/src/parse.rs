//! Argument conversion: sides and order types from strings or integer codes, quantities, and the
//! price band. Everything here raises `ValueError`/`TypeError` (argument errors), never a
//! `Rejected` event.

use engine_rs::{BookConfig, OrderType, Side, MAX_BAND};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};

pub(crate) fn side_from_code(code: u8) -> Option<Side> {
    match code {
        0 => Some(Side::Buy),
        1 => Some(Side::Sell),
        _ => None,
    }
}

pub(crate) fn order_type_from_code(code: u8) -> Option<OrderType> {
    match code {
        0 => Some(OrderType::Limit),
        1 => Some(OrderType::Market),
        2 => Some(OrderType::Ioc),
        3 => Some(OrderType::Fok),
        _ => None,
    }
}

/// `"buy"`/`"sell"` (any case) or the codes 0/1 (ints, `Side` enum members included).
pub(crate) fn side(obj: &Bound<'_, PyAny>) -> PyResult<Side> {
    if let Ok(text) = obj.cast::<PyString>() {
        let text = text.to_str()?;
        return match text.to_ascii_lowercase().as_str() {
            "buy" => Ok(Side::Buy),
            "sell" => Ok(Side::Sell),
            _ => Err(PyValueError::new_err(format!(
                "invalid side {text:?}: expected 'buy' or 'sell' (or the codes 0/1)"
            ))),
        };
    }
    if obj.is_instance_of::<PyInt>() {
        let code: i64 = obj.extract()?;
        return u8::try_from(code)
            .ok()
            .and_then(side_from_code)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "invalid side code {code}: expected 0 (buy) or 1 (sell)"
                ))
            });
    }
    Err(PyTypeError::new_err(format!(
        "side must be a str ('buy'/'sell') or an int code (0/1), not {}",
        obj.get_type().name()?
    )))
}

/// `"limit"`/`"market"`/`"ioc"`/`"fok"` (any case) or the codes 0..=3.
pub(crate) fn order_type(obj: &Bound<'_, PyAny>) -> PyResult<OrderType> {
    if let Ok(text) = obj.cast::<PyString>() {
        let text = text.to_str()?;
        return match text.to_ascii_lowercase().as_str() {
            "limit" => Ok(OrderType::Limit),
            "market" => Ok(OrderType::Market),
            "ioc" => Ok(OrderType::Ioc),
            "fok" => Ok(OrderType::Fok),
            _ => Err(PyValueError::new_err(format!(
                "invalid order type {text:?}: expected 'limit', 'market', 'ioc' or 'fok' \
                 (or the codes 0..3)"
            ))),
        };
    }
    if obj.is_instance_of::<PyInt>() {
        let code: i64 = obj.extract()?;
        return u8::try_from(code)
            .ok()
            .and_then(order_type_from_code)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                "invalid order type code {code}: expected 0 (limit), 1 (market), 2 (ioc) or 3 (fok)"
            ))
            });
    }
    Err(PyTypeError::new_err(format!(
        "order_type must be a str ('limit'/'market'/'ioc'/'fok') or an int code (0..3), not {}",
        obj.get_type().name()?
    )))
}

/// A non-negative int below 2**64 (order ids and quantities; a quantity of 0 is allowed here and
/// rejected by the book as `zero_quantity`). Negative or too large values raise `ValueError`.
pub(crate) fn unsigned(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    obj.extract::<u64>().map_err(|err| {
        if err.is_instance_of::<PyOverflowError>(obj.py()) {
            PyValueError::new_err(format!("{what} must be in [0, 2**64), got {obj}"))
        } else if err.is_instance_of::<PyTypeError>(obj.py()) {
            PyTypeError::new_err(format!(
                "{what} must be an int, not {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        } else {
            err
        }
    })
}

/// Whether `order_type` carries a limit price (everything but market orders).
pub(crate) fn is_priced(order_type: OrderType) -> bool {
    !matches!(order_type, OrderType::Market)
}

pub(crate) fn in_band(config: &BookConfig, price: i64) -> bool {
    config.min_price <= price && price <= config.max_price
}

pub(crate) fn check_band(config: &BookConfig, price: i64) -> PyResult<()> {
    if in_band(config, price) {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "price {price} is outside the book's band [{}, {}]",
            config.min_price, config.max_price
        )))
    }
}

/// A `BookConfig` after the argument checks the core would otherwise panic on or reject later.
pub(crate) fn book_config(min_price: i64, max_price: i64, max_orders: i64) -> PyResult<BookConfig> {
    if min_price > max_price {
        return Err(PyValueError::new_err(format!(
            "min_price ({min_price}) must be <= max_price ({max_price})"
        )));
    }
    let band = max_price as i128 - min_price as i128 + 1;
    if band > MAX_BAND as i128 {
        return Err(PyValueError::new_err(format!(
            "the price band [{min_price}, {max_price}] is {band} ticks wide; at most {MAX_BAND} \
             are supported (the book allocates per tick)"
        )));
    }
    if max_orders <= 0 || max_orders > u32::MAX as i64 {
        return Err(PyValueError::new_err(format!(
            "max_orders must be in [1, 2**32), got {max_orders}"
        )));
    }
    Ok(BookConfig {
        min_price,
        max_price,
        max_orders: max_orders as usize,
    })
}
