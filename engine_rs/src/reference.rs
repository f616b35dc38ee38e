//! Reference model: deliberately simple and obviously correct, used as the oracle in the
//! differential tests and as the baseline in the benchmarks. Same semantics as
//! [`crate::OrderBook`] (including reject precedence and event order), none of its tricks:
//! a `BTreeMap` of price -> `VecDeque` FIFO per side and a `HashMap` id -> (side, price).

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::types::*;

#[derive(Clone, Copy, Debug)]
struct RefOrder {
    id: OrderId,
    remaining: Qty,
    filled: Qty,
}

#[derive(Clone, Debug)]
pub struct ReferenceBook {
    config: BookConfig,
    bids: BTreeMap<Price, VecDeque<RefOrder>>,
    asks: BTreeMap<Price, VecDeque<RefOrder>>,
    index: HashMap<OrderId, (Side, Price)>,
    seq: SeqNo,
}

impl ReferenceBook {
    pub fn new(config: BookConfig) -> Self {
        ReferenceBook {
            config,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            index: HashMap::new(),
            seq: 0,
        }
    }

    fn in_band(&self, price: Price) -> bool {
        price >= self.config.min_price && price <= self.config.max_price
    }

    /// Can a taker on `side` with `limit` (None = market) trade at `price`?
    fn crosses(side: Side, limit: Option<Price>, price: Price) -> bool {
        match (side, limit) {
            (_, None) => true,
            (Side::Buy, Some(l)) => price <= l,
            (Side::Sell, Some(l)) => price >= l,
        }
    }

    fn available(&self, side: Side, limit: Option<Price>) -> Qty {
        let opp = match side {
            Side::Buy => &self.asks,
            Side::Sell => &self.bids,
        };
        opp.iter()
            .filter(|(p, _)| Self::crosses(side, limit, **p))
            .flat_map(|(_, q)| q.iter())
            .map(|o| o.remaining)
            .fold(0, Qty::saturating_add)
    }

    /// Trades a taker against the opposite side. Returns the unfilled quantity.
    fn take(
        &mut self,
        taker: OrderId,
        side: Side,
        limit: Option<Price>,
        mut remaining: Qty,
        filled: &mut Qty,
        events: &mut Vec<Event>,
    ) -> Qty {
        while remaining > 0 {
            let opp = match side {
                Side::Buy => &mut self.asks,
                Side::Sell => &mut self.bids,
            };
            let best = match side {
                Side::Buy => opp.keys().next().copied(),
                Side::Sell => opp.keys().next_back().copied(),
            };
            let Some(price) = best else { break };
            if !Self::crosses(side, limit, price) {
                break;
            }
            let queue = opp.get_mut(&price).unwrap();
            let maker = queue.front_mut().unwrap();
            let q = remaining.min(maker.remaining);
            maker.remaining -= q;
            maker.filled += q;
            remaining -= q;
            *filled += q;
            self.seq += 1;
            events.push(Event::Fill {
                seq: self.seq,
                maker_id: maker.id,
                taker_id: taker,
                price,
                qty: q,
                taker_side: side,
            });
            if maker.remaining == 0 {
                let done = queue.pop_front().unwrap();
                self.index.remove(&done.id);
                events.push(Event::Done {
                    id: done.id,
                    filled: done.filled,
                });
            }
            if queue.is_empty() {
                opp.remove(&price);
            }
        }
        remaining
    }

    fn rest(&mut self, side: Side, price: Price, order: RefOrder) {
        let book = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        book.entry(price).or_default().push_back(order);
        self.index.insert(order.id, (side, price));
    }

    /// Removes a resting order from its queue and the index.
    fn remove(&mut self, id: OrderId) -> Option<(Side, Price, RefOrder)> {
        let (side, price) = self.index.remove(&id)?;
        let book = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let queue = book.get_mut(&price).unwrap();
        let pos = queue.iter().position(|o| o.id == id).unwrap();
        let order = queue.remove(pos).unwrap();
        if queue.is_empty() {
            book.remove(&price);
        }
        Some((side, price, order))
    }

    fn find(&self, id: OrderId) -> Option<(Side, Price, &RefOrder)> {
        let &(side, price) = self.index.get(&id)?;
        let book = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        };
        let o = book[&price].iter().find(|o| o.id == id).unwrap();
        Some((side, price, o))
    }
}

impl MatchingBook for ReferenceBook {
    fn submit(&mut self, order: NewOrder, events: &mut Vec<Event>) {
        let id = order.id;
        let limit = (order.order_type != OrderType::Market).then_some(order.price);
        let reject = if order.qty == 0 {
            Some(RejectReason::ZeroQuantity)
        } else if limit.is_some() && !self.in_band(order.price) {
            Some(RejectReason::PriceOutOfBand)
        } else if self.index.contains_key(&id) {
            Some(RejectReason::DuplicateOrderId)
        } else if order.order_type == OrderType::Limit && self.index.len() >= self.config.max_orders
        {
            Some(RejectReason::BookFull)
        } else if order.order_type == OrderType::Fok
            && self.available(order.side, limit) < order.qty
        {
            Some(RejectReason::FokNotFillable)
        } else {
            None
        };
        if let Some(reason) = reject {
            events.push(Event::Rejected { id, reason });
            return;
        }
        events.push(Event::Accepted { id });
        let mut filled = 0;
        let remaining = self.take(id, order.side, limit, order.qty, &mut filled, events);
        if remaining == 0 {
            events.push(Event::Done { id, filled });
        } else if order.order_type == OrderType::Limit {
            self.rest(
                order.side,
                order.price,
                RefOrder {
                    id,
                    remaining,
                    filled,
                },
            );
        } else {
            events.push(Event::Cancelled { id, remaining });
        }
    }

    fn cancel(&mut self, id: OrderId, events: &mut Vec<Event>) {
        match self.remove(id) {
            Some((_, _, o)) => events.push(Event::Cancelled {
                id,
                remaining: o.remaining,
            }),
            None => events.push(Event::Rejected {
                id,
                reason: RejectReason::UnknownOrderId,
            }),
        }
    }

    fn modify(&mut self, id: OrderId, new_price: Price, new_qty: Qty, events: &mut Vec<Event>) {
        let reject = if new_qty == 0 {
            Some(RejectReason::ZeroQuantity)
        } else if !self.in_band(new_price) {
            Some(RejectReason::PriceOutOfBand)
        } else if !self.index.contains_key(&id) {
            Some(RejectReason::UnknownOrderId)
        } else {
            None
        };
        if let Some(reason) = reject {
            events.push(Event::Rejected { id, reason });
            return;
        }
        let (side, price, order) = self.find(id).map(|(s, p, o)| (s, p, *o)).unwrap();
        if price == new_price && new_qty <= order.remaining {
            let book = match side {
                Side::Buy => &mut self.bids,
                Side::Sell => &mut self.asks,
            };
            book.get_mut(&price)
                .unwrap()
                .iter_mut()
                .find(|o| o.id == id)
                .unwrap()
                .remaining = new_qty;
            events.push(Event::Modified {
                id,
                price: new_price,
                qty: new_qty,
                kept_priority: true,
            });
            return;
        }
        events.push(Event::Modified {
            id,
            price: new_price,
            qty: new_qty,
            kept_priority: false,
        });
        self.remove(id);
        let mut filled = order.filled;
        let remaining = self.take(id, side, Some(new_price), new_qty, &mut filled, events);
        if remaining == 0 {
            events.push(Event::Done { id, filled });
        } else {
            self.rest(
                side,
                new_price,
                RefOrder {
                    id,
                    remaining,
                    filled,
                },
            );
        }
    }

    fn best_bid(&self) -> Option<(Price, Qty)> {
        self.bids
            .iter()
            .next_back()
            .map(|(p, q)| (*p, q.iter().map(|o| o.remaining).sum()))
    }

    fn best_ask(&self) -> Option<(Price, Qty)> {
        self.asks
            .iter()
            .next()
            .map(|(p, q)| (*p, q.iter().map(|o| o.remaining).sum()))
    }

    fn depth(&self, side: Side, levels: usize, out: &mut Vec<Level>) {
        out.clear();
        let to_level = |(p, q): (&Price, &VecDeque<RefOrder>)| Level {
            price: *p,
            qty: q.iter().map(|o| o.remaining).sum(),
            orders: q.len() as u32,
        };
        match side {
            Side::Buy => out.extend(self.bids.iter().rev().take(levels).map(to_level)),
            Side::Sell => out.extend(self.asks.iter().take(levels).map(to_level)),
        }
    }

    fn order(&self, id: OrderId) -> Option<OrderView> {
        let (side, price, o) = self.find(id)?;
        Some(OrderView {
            id,
            side,
            price,
            remaining: o.remaining,
            filled: o.filled,
        })
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}
