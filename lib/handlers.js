'use strict';

// The registered handlers of one kind (tasks or events). The native side
// knows each id by its slot, a number it hands back with every call, so a
// call finds its handler without a lookup by id.

class HandlerSlots {
  constructor() {
    this._entries = []; // slot -> { id, fn }; fn is null once unregistered
    this._slots = new Map(); // id -> slot
  }

  /** Registers or replaces the handler of `id`; returns its slot. */
  set(id, fn) {
    let slot = this._slots.get(id);
    if (slot === undefined) {
      slot = this._entries.length;
      this._entries.push({ id, fn });
      this._slots.set(id, slot);
    } else {
      this._entries[slot] = { id, fn };
    }
    return slot;
  }

  /** Unregisters `id`; false when it was not registered. Its slot keeps `{ id, fn: null }`. */
  delete(id) {
    const slot = this._slots.get(id);
    if (slot === undefined) return false;
    this._slots.delete(id);
    this._entries[slot] = { id, fn: null };
    return true;
  }

  /** `{ id, fn }` of a slot (`fn` null once unregistered), or undefined. */
  at(slot) {
    return this._entries[slot];
  }
}

module.exports = { HandlerSlots };
