//! Multi-symbol engine: one book per symbol, commands processed one at a time on one thread
//! (the LMAX "single writer" pattern). No locks and no shared state, so the output is a pure
//! function of the command stream: replaying the same commands yields the same events.

use crate::book::OrderBook;
use crate::types::*;

#[derive(Debug, Default)]
pub struct Engine {
    books: Vec<OrderBook>,
}

impl Engine {
    pub fn new() -> Self {
        Engine { books: Vec::new() }
    }

    /// Adds a book; symbol ids are assigned densely from 0 in call order.
    pub fn add_symbol(&mut self, config: BookConfig) -> SymbolId {
        self.books.push(OrderBook::new(config));
        (self.books.len() - 1) as SymbolId
    }

    /// Routes `command` to its book and appends the resulting events. An unknown symbol yields
    /// `Rejected { id, reason: UnknownSymbol }` (id = the order id of the command).
    #[inline]
    pub fn process(&mut self, command: Command, events: &mut Vec<Event>) {
        use crate::MatchingBook;
        match command {
            Command::Submit { symbol, order } => match self.books.get_mut(symbol as usize) {
                Some(b) => b.submit(order, events),
                None => unknown(order.id, events),
            },
            Command::Cancel { symbol, id } => match self.books.get_mut(symbol as usize) {
                Some(b) => b.cancel(id, events),
                None => unknown(id, events),
            },
            Command::Modify {
                symbol,
                id,
                price,
                qty,
            } => match self.books.get_mut(symbol as usize) {
                Some(b) => b.modify(id, price, qty, events),
                None => unknown(id, events),
            },
        }
    }

    pub fn book(&self, symbol: SymbolId) -> Option<&OrderBook> {
        self.books.get(symbol as usize)
    }

    pub fn book_mut(&mut self, symbol: SymbolId) -> Option<&mut OrderBook> {
        self.books.get_mut(symbol as usize)
    }

    /// Number of symbols added so far.
    pub fn symbols(&self) -> usize {
        self.books.len()
    }
}

#[inline]
fn unknown(id: OrderId, events: &mut Vec<Event>) {
    events.push(Event::Rejected {
        id,
        reason: RejectReason::UnknownSymbol,
    });
}
