'use strict';

// The two buffers JS and the native side exchange: batches of records the
// native side queues for JS (read by BatchReader) and the answers JS hands
// back (written by AnswerWriter). The formats are src/wire.rs's.

// The numbers of both formats, field offsets included, come from the native
// side, where they are defined once (src/wire.rs); read once here, so V8
// treats them as constants.
const {
  KIND_VALUES,
  FLAG_JOINED,
  FLAG_JSON_TEXT,
  FLAG_VALUES_ASCII,
  RECORD_KIND,
  RECORD_FLAGS,
  RECORD_TICKET,
  RECORD_HANDLER,
  RECORD_LENGTH,
  RECORD_HEADER,
  ANSWER_TICKET,
  ANSWER_STATUS,
  ANSWER_LENGTH,
  ANSWER_HEADER: ANSWER_HEAD,
  JOINED_RESULTS,
  BATCH_BUFFER,
  POLLED_CHUNKS,
} = require('../native.js');
const EMPTY = Buffer.alloc(0);

/**
 * Reads a batch record by record: `next()` moves to a record and sets
 * `kind`, `flags`, `ticket`, `slot` and `length`; its bytes are then read
 * with `text()`, `latin1()` or `bytes()`. One reader serves every batch, so
 * reading allocates nothing but what a record's contents need.
 */
class BatchReader {
  constructor() {
    // Batches arrive in this buffer, reused until one holds body chunks (the
    // streams keep views of them: a fresh one is taken then), or, when they
    // do not fit, in one of their own.
    this._buffer = Buffer.allocUnsafeSlow(BATCH_BUFFER);
    this._batch = EMPTY;
    this._next = 0; // offset of the record after the current one
    this._start = 0; // offset of the current record's bytes
    // The parsed values record of the batch (see joinedValue) and the index
    // of the next joined call's value in it.
    this._values = null;
    this._nextValue = 0;
    /** Record kind (KIND_*). */
    this.kind = 0;
    /** Body kind of a call (with FLAG_JOINED or FLAG_JSON_TEXT), or a kind's own flag. */
    this.flags = 0;
    /** The call or stream the record is about. */
    this.ticket = 0;
    /** A call's handler slot (lib/handlers.js), or a values record's count. */
    this.slot = 0;
    /** Bytes of the record's contents. */
    this.length = 0;
  }

  /** Fetches what the native side queued into a fresh batch; false when nothing was. */
  poll(native) {
    const n = native.pollInto(this._buffer);
    if (n === -1) return false;
    if (n === -2) {
      this._batch = native.takeSpill();
    } else if (n >= POLLED_CHUNKS) {
      this._batch = this._buffer.subarray(0, n - POLLED_CHUNKS);
      this._buffer = Buffer.allocUnsafeSlow(BATCH_BUFFER);
    } else {
      this._batch = this._buffer.subarray(0, n);
    }
    this._next = 0;
    this._values = null;
    this._nextValue = 0;
    return true;
  }

  /** Moves to the next record; false (letting go of the batch) when there is none. */
  next() {
    const batch = this._batch;
    const off = this._next;
    if (off + RECORD_HEADER > batch.length) {
      this._batch = EMPTY;
      this._values = null;
      return false;
    }
    this.kind = batch[off + RECORD_KIND];
    this.flags = batch[off + RECORD_FLAGS];
    this.ticket = batch.readUInt32LE(off + RECORD_TICKET);
    this.slot = batch.readUInt32LE(off + RECORD_HANDLER);
    this.length = batch.readUInt32LE(off + RECORD_LENGTH);
    this._start = off + RECORD_HEADER;
    this._next = this._start + this.length;
    return true;
  }

  /** Whether a record follows the current one. */
  hasNext() {
    return this._next + RECORD_HEADER <= this._batch.length;
  }

  /** A call's body kind (BODY_*). */
  get bodyKind() {
    return this.flags & ~(FLAG_JOINED | FLAG_JSON_TEXT);
  }

  /** Whether a call's body (not joined) may be read with `JSON.parse` (lib/serializer-json.js). */
  get jsonText() {
    return (this.flags & FLAG_JSON_TEXT) !== 0;
  }

  /** Whether a call's body is in the batch's values record (see joinedValue). */
  get joined() {
    return (this.flags & FLAG_JOINED) !== 0;
  }

  text() {
    return this._batch.toString('utf8', this._start, this._start + this.length);
  }

  latin1() {
    return this._batch.toString('latin1', this._start, this._start + this.length);
  }

  /** A view of the record's bytes (a body chunk, kept by its stream). */
  bytes() {
    return this._batch.subarray(this._start, this._start + this.length);
  }

  /**
   * A joined call's body: the small JSON bodies of a batch are joined by the
   * native side, in call order, into the batch's last record, parsed here
   * with one `JSON.parse` when the first of them is read.
   */
  joinedValue() {
    if (this._values === null) this._values = this._readValues(this._next);
    return this._values[this._nextValue++];
  }

  _readValues(from) {
    const batch = this._batch;
    const end = batch.length;
    let off = from;
    while (off + RECORD_HEADER <= end) {
      const len = batch.readUInt32LE(off + RECORD_LENGTH);
      if (batch[off + RECORD_KIND] === KIND_VALUES) {
        const start = off + RECORD_HEADER;
        const ascii = batch[off + RECORD_FLAGS] === FLAG_VALUES_ASCII;
        const text = batch.toString(ascii ? 'latin1' : 'utf8', start, start + len);
        const values = JSON.parse(text);
        if (!Array.isArray(values) || values.length !== batch.readUInt32LE(off + RECORD_HANDLER))
          throw new Error('malformed values record');
        return values;
      }
      off += RECORD_HEADER + len;
    }
    throw new Error('missing values record');
  }
}

// A joined call's entries in AnswerWriter#_joinedCalls, JOINED_SLOTS per call.
const JOINED_TICKET = 0;
const JOINED_KIND = 1;
const JOINED_ID = 2;
const JOINED_CTX = 3;
const JOINED_SLOTS = 4;

/**
 * Queues answers: each is encoded at once into one reused buffer, handed to
 * the native side (`completeMany`) when the buffer is full and at the end of
 * the current microtask round (one call for every answer of a batch).
 * Results joined in a round (see join) go as one record of ticket 0: their
 * count where the status goes, their tickets, then one JSON array text that
 * the native side splits into `{"ok":true,"result":...}` answers.
 */
class AnswerWriter {
  /**
   * @param native the NativeServer
   * @param answerAlone `(ticket, kind, id, ctx, value)`: answers a joined
   *   result on its own, when the round's results cannot be written together
   */
  constructor(native, answerAlone) {
    this._native = native;
    this._answerAlone = answerAlone;
    this._buffer = Buffer.allocUnsafe(256 * 1024);
    this._off = 0; // end of the records queued in _buffer
    // Results of this round to write with one JSON.stringify, and their calls.
    this._joinedValues = [];
    this._joinedCalls = [];
    this._flushScheduled = false;
    this._holding = false;
    this._flush = () => this._flushAnswers();
  }

  /** Queues an answer. */
  answer(ticket, status, body) {
    const buf = this._bufferFor(ANSWER_HEAD, body);
    const off = buf === this._buffer ? this._off : 0;
    buf.writeUInt32LE(ticket, off + ANSWER_TICKET);
    buf.writeUInt32LE(status, off + ANSWER_STATUS);
    const len = buf.write(body, off + ANSWER_HEAD, 'utf8');
    buf.writeUInt32LE(len, off + ANSWER_LENGTH);
    this._recordWritten(buf, off + ANSWER_HEAD + len);
  }

  /**
   * Queues a successful call's result (a `joinable` one) to be written with
   * the others of this microtask round.
   */
  join(ticket, kind, id, ctx, value) {
    this._joinedValues.push(value);
    this._joinedCalls.push(ticket, kind, id, ctx);
    this._scheduleFlush();
  }

  /** Whether answers wait for a batch being dispatched call by call (lib/dispatch.js). */
  get holding() {
    return this._holding;
  }

  /** Answers wait until `release()`: a batch goes on call by call in a later microtask. */
  hold() {
    this._holding = true;
  }

  /** Stops holding; returns whether answers were held. */
  release() {
    const held = this._holding;
    this._holding = false;
    return held;
  }

  /** Hands over, at the end of this round, what was queued while holding. */
  flushPending() {
    if (this._off > 0 || this._joinedValues.length > 0) this._scheduleFlush();
  }

  /**
   * The buffer a record of `head` bytes then `text` (as UTF-8) is written
   * into: the reused one at `_off` (handed over first when the record does
   * not fit behind what it holds), or one of the record's own, from 0, when
   * the record is larger than it.
   */
  _bufferFor(head, text) {
    const buf = this._buffer;
    const off = this._off;
    if (off + head + text.length * 3 <= buf.length) return buf;
    const bytes = Buffer.byteLength(text);
    if (off + head + bytes <= buf.length) return buf;
    if (off > 0) {
      this._native.completeMany(buf.subarray(0, off));
      this._off = 0;
    }
    if (head + bytes <= buf.length) return buf;
    return Buffer.allocUnsafe(head + bytes);
  }

  /** A record is written into `buf` (from `_bufferFor`) up to `end`: keep it queued, or hand over a buffer of its own. */
  _recordWritten(buf, end) {
    if (buf === this._buffer) {
      this._off = end;
      this._scheduleFlush();
    } else {
      this._native.completeMany(buf);
    }
  }

  _scheduleFlush() {
    if (!this._flushScheduled) {
      this._flushScheduled = true;
      queueMicrotask(this._flush);
    }
  }

  /** Writes the joined results as one record (ticket 0; see join). */
  _writeJoined() {
    const values = this._joinedValues;
    const calls = this._joinedCalls;
    const n = values.length;
    this._joinedValues = [];
    this._joinedCalls = [];
    let text;
    try {
      text = JSON.stringify(values);
    } catch {
      // One of them cannot be written: each goes on its own, as it would
      // have alone, so only that call fails.
      for (let i = 0; i < n; i++) {
        const at = JOINED_SLOTS * i;
        this._answerAlone(
          calls[at + JOINED_TICKET],
          calls[at + JOINED_KIND],
          calls[at + JOINED_ID],
          calls[at + JOINED_CTX],
          values[i],
        );
      }
      return;
    }
    const head = ANSWER_HEAD + 4 * n;
    const buf = this._bufferFor(head, text);
    const off = buf === this._buffer ? this._off : 0;
    buf.writeUInt32LE(JOINED_RESULTS, off + ANSWER_TICKET);
    buf.writeUInt32LE(n, off + ANSWER_STATUS);
    for (let i = 0; i < n; i++) buf.writeUInt32LE(calls[JOINED_SLOTS * i + JOINED_TICKET], off + ANSWER_HEAD + 4 * i);
    const len = buf.write(text, off + head, 'utf8');
    buf.writeUInt32LE(4 * n + len, off + ANSWER_LENGTH);
    this._recordWritten(buf, off + head + len);
  }

  _flushAnswers() {
    // A batch still being dispatched call by call flushes when it is done.
    if (this._holding) {
      this._flushScheduled = false;
      return;
    }
    // (Still marked scheduled while the joined results are written, so
    // writing them does not schedule another flush.)
    if (this._joinedValues.length > 0) this._writeJoined();
    this._flushScheduled = false;
    const off = this._off;
    if (off === 0) return;
    this._off = 0;
    this._native.completeMany(this._buffer.subarray(0, off));
  }
}

module.exports = { BatchReader, AnswerWriter };
