'use strict';

// The server's serializer as request bodies are read and answers written:
// plain JSON without one or where the serializer is known to write JSON
// (lib/serializer-json.js), and the server's own envelopes as constants
// unless the serializer writes them differently.

// The envelopes' text is the native side's (src/core/envelope.rs).
const {
  ABORTED_BODY,
  INTERNAL_BODY,
  INVALID_JSON_BODY,
  OK_EMPTY,
  OK_RESULT_PREFIX,
  OK_RESULT_SUFFIX,
} = require('../native.js');
const { joinable } = require('./outcome.js');
const { jsonRuleOf } = require('./serializer-json.js');

class BodyCodec {
  /** @param {{ parse(text: string): unknown, stringify(value: unknown): string } | null} serializer */
  constructor(serializer) {
    this._serializer = serializer;
    /** No serializer: bodies are plain JSON, and any joinable result may be written joined (lib/wire.js). */
    this.plainJson = serializer === null;
    /** With a serializer: which results it writes as JSON does (`{ isPlain }`), or null. */
    this.jsonRule = serializer === null ? null : jsonRuleOf(serializer);
    /** Bodies of the answers every call may get. */
    this.okEmpty = this.envelope({ ok: true }, OK_EMPTY);
    this.aborted = this.envelope(JSON.parse(ABORTED_BODY), ABORTED_BODY);
    this.internal = this.envelope(JSON.parse(INTERNAL_BODY), INTERNAL_BODY);
    this.invalidJson = this.envelope(JSON.parse(INVALID_JSON_BODY), INVALID_JSON_BODY);
  }

  parse(text) {
    return this._serializer ? this._serializer.parse(text) : JSON.parse(text);
  }

  stringify(value) {
    return this._serializer ? this._serializer.stringify(value) : JSON.stringify(value);
  }

  /** Whether a successful call's result may be written with the others of its round, as JSON (lib/wire.js). */
  joins(result) {
    return this.plainJson ? joinable(result) : this.jsonRule !== null && this.jsonRule.isPlain(result);
  }

  /** `{"ok":true,"result":...}`; throws when the result cannot be written. */
  ok(result) {
    if (this._serializer) {
      if (this.jsonRule !== null && this.jsonRule.isPlain(result))
        return OK_RESULT_PREFIX + JSON.stringify(result) + OK_RESULT_SUFFIX;
      return this._serializer.stringify({ ok: true, result });
    }
    if (result === undefined) return OK_EMPTY;
    const text = JSON.stringify(result);
    return text === undefined ? OK_EMPTY : OK_RESULT_PREFIX + text + OK_RESULT_SUFFIX;
  }

  /** An envelope of the server's own, through the serializer; `fallback` when it fails. */
  envelope(value, fallback) {
    if (!this._serializer) return fallback;
    try {
      const text = this._serializer.stringify(value);
      return typeof text === 'string' ? text : fallback;
    } catch {
      return fallback;
    }
  }

  /** `{"ok":false,"error":...}` of an error member the server made (as JSON when the serializer fails). */
  failure(error) {
    return this.envelope({ ok: false, error }, JSON.stringify({ ok: false, error }));
  }

  /** An envelope the native side wrote as JSON, rewritten by the serializer (as JSON when it fails). */
  reserialize(json) {
    try {
      const text = this._serializer.stringify(JSON.parse(json));
      return typeof text === 'string' ? text : json;
    } catch {
      return json;
    }
  }
}

module.exports = { BodyCodec };
