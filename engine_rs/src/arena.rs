//! Preallocated order storage with intrusive doubly linked FIFO lists.
//!
//! Orders live in one `Vec<OrderSlot>` reserved for `max_orders` at construction; slots are
//! addressed by `u32` index and recycled through a free list threaded through `next`. The
//! `prev`/`next` links chain the orders of one price level in time priority, so unlinking an
//! order (cancel) is O(1) and nothing is ever allocated or moved after construction.

use crate::types::{OrderId, Qty, Side};

/// "No slot" link value.
pub(crate) const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
pub(crate) struct OrderSlot {
    pub id: OrderId,
    pub remaining: Qty,
    pub filled: Qty,
    /// Price as an index into the level arrays (`price - min_price`).
    pub level: u32,
    pub prev: u32,
    pub next: u32,
    pub side: Side,
}

#[derive(Debug)]
pub(crate) struct Arena {
    slots: Vec<OrderSlot>,
    free_head: u32,
    capacity: usize,
}

impl Arena {
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity < NIL as usize, "max_orders must be < 2^32 - 1");
        // Reserve only: slots are initialised on first use (push within capacity never
        // reallocates), so a large `max_orders` costs address space, not start-up time.
        Arena {
            slots: Vec::with_capacity(capacity),
            free_head: NIL,
            capacity,
        }
    }

    /// Takes a free slot, or `None` when all `capacity` slots are in use.
    #[inline]
    pub(crate) fn alloc(&mut self, slot: OrderSlot) -> Option<u32> {
        if self.free_head != NIL {
            let i = self.free_head;
            self.free_head = self.slots[i as usize].next;
            self.slots[i as usize] = slot;
            Some(i)
        } else if self.slots.len() < self.capacity {
            self.slots.push(slot);
            Some((self.slots.len() - 1) as u32)
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn free(&mut self, i: u32) {
        self.slots[i as usize].next = self.free_head;
        self.free_head = i;
    }

    /// Returns a whole chain of slots, linked through `next` from `head` to `tail`, to the free
    /// list in O(1) (a fully consumed price level).
    #[inline]
    pub(crate) fn free_chain(&mut self, head: u32, tail: u32) {
        self.slots[tail as usize].next = self.free_head;
        self.free_head = head;
    }

    /// The slots in use so far (indexed by slot number).
    #[inline]
    pub(crate) fn slots(&self) -> &[OrderSlot] {
        &self.slots
    }

    #[inline]
    pub(crate) fn get(&self, i: u32) -> &OrderSlot {
        &self.slots[i as usize]
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, i: u32) -> &mut OrderSlot {
        &mut self.slots[i as usize]
    }
}
