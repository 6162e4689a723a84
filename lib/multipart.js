'use strict';
// Multipart (`multipart/form-data`) task input, parsed with busboy over a Node Readable of the raw
// request body. Behaves like Runner's nodeExposure (`parseMultipartInput` and friends in
// @bluelibs/runner/dist/node): the `__manifest` field carries the serialized `{ input }` in which
// file sentinels `{ $runnerFile: 'File', id, meta }` are replaced by InputFile objects, and every
// part named `file:{id}` streams into the InputFile with that id.
//
// parseMultipart(req, headers, opts) resolves as soon as the manifest is parsed (or the upload has
// failed): { ok: true, value, finalize } | { ok: false, response }. `finalize` settles once busboy
// has consumed the whole body (every declared file got its part) or the upload failed; files keep
// streaming into their InputFile while the task runs. Responses are built exactly as the reference
// builds them, before its `sanitizeErrorResponse` (see toHttpResponse below).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { PassThrough, pipeline } = require('node:stream');
const busboy = require('busboy');

const MANIFEST_FIELD = '__manifest';
const FILE_PART_PREFIX = 'file:';
const DEFAULT_FILE_NAME = 'upload';
const META_KEYS = ['type', 'size', 'lastModified', 'extra'];

const DEFAULT_LIMITS = Object.freeze({
  fileSize: 20 * 1024 * 1024,
  files: 10,
  fields: 100,
  fieldSize: 1024 * 1024,
});

function errorResponse(status, message, code) {
  return { status, body: { ok: false, error: { message, code } } };
}

const tooLarge = (message) => errorResponse(413, message, 'PAYLOAD_TOO_LARGE');
const invalidPayload = () => errorResponse(400, 'Invalid multipart payload', 'INVALID_MULTIPART');
const invalidManifest = () => errorResponse(400, 'Invalid manifest', 'INVALID_MULTIPART');
const missingManifest = () => errorResponse(400, 'Missing manifest', 'MISSING_MANIFEST');
const missingFilePart = (id) => errorResponse(500, `Missing file part for id ${id}`, 'MISSING_FILE_PART');
const streamError = () => errorResponse(500, 'Multipart stream error', 'STREAM_ERROR');
const clientClosed = () => errorResponse(499, 'Client Closed Request', 'REQUEST_ABORTED');

function isMultipart(contentType) {
  return /multipart\/form-data/i.test(contentType);
}

// ---------------------------------------------------------------------------------------------
// Errors thrown by InputFile#stream(): Runner's own typed errors when @bluelibs/runner is
// installed (so `Errors.nodeInputFileConsumedError.is(e)` holds), else look-alikes.

const INPUT_FILE_ERRORS = {
  nodeInputFileConsumedError: {
    id: 'runner.errors.node.files.inputFileConsumed',
    message: 'InputFile stream already consumed',
    remediation:
      'InputFile streams are single-use. Store needed data before consuming or create a new InputFile instance.',
  },
  nodeInputFileUnavailableError: {
    id: 'runner.errors.node.files.inputFileUnavailable',
    message: 'InputFile stream is not available',
    remediation: 'Ensure a valid stream is attached and has not been disposed before accessing it.',
  },
};

function runnerErrorHelper(key) {
  try {
    // eslint-disable-next-line global-require
    const helper = require('@bluelibs/runner').Errors?.[key];
    if (helper && typeof helper.new === 'function') return helper;
  } catch {
    /* optional peer dependency not installed */
  }
  return null;
}

function inputFileError(key) {
  const helper = runnerErrorHelper(key);
  if (helper) return helper.new();
  const { id, message, remediation } = INPUT_FILE_ERRORS[key];
  const err = new Error(`${message}\n\nRemediation: ${remediation}`);
  err.id = id;
  err.data = {};
  err.name = id;
  err.httpCode = undefined;
  err.remediation = remediation;
  return err;
}

// ---------------------------------------------------------------------------------------------
// InputFile: what a task receives in place of a file sentinel (same shape as Runner's
// NodeInputFile, including its own enumerable `_consumed` / `_stream` properties).

function tempFileName(name) {
  const safe = name.replace(/[^a-zA-Z0-9._-]/g, '_').slice(0, 64) || DEFAULT_FILE_NAME;
  return `${safe}.${Date.now()}.${Math.random().toString(36).slice(2, 10)}`;
}

class InputFile {
  constructor(meta, stream) {
    this._consumed = false;
    this.name = meta.name;
    this.type = meta.type;
    this.size = meta.size;
    this.lastModified = meta.lastModified;
    this.extra = meta.extra;
    this._stream = stream;
  }

  async resolve() {
    return { stream: this.stream() };
  }

  stream() {
    if (this._consumed) throw inputFileError('nodeInputFileConsumedError');
    if (!this._stream) throw inputFileError('nodeInputFileUnavailableError');
    this._consumed = true;
    return this._stream;
  }

  async toTempFile(dir) {
    const file = path.join(dir || os.tmpdir(), tempFileName(this.name));
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const out = fs.createWriteStream(file);
    const source = this.stream();
    let bytesWritten = 0;
    source.on('data', (chunk) => {
      bytesWritten += chunk.length;
    });
    await new Promise((resolve, reject) => {
      pipeline(source, out, (err) => (err ? reject(err) : resolve()));
    });
    return { path: file, bytesWritten };
  }
}

// ---------------------------------------------------------------------------------------------
// Metadata precedence (reference `applyMeta`): the manifest's metadata always wins; the part's
// (filename / mime type) only fills what the manifest did not declare and the file does not have
// yet (a name still equal to the default 'upload' counts as not set).

function mergeMeta(slot, meta, fromManifest) {
  const file = slot.file;
  if (fromManifest) slot.manifestMeta = { ...(slot.manifestMeta ?? {}), ...meta };
  const declared = (key) => (slot.manifestMeta ? slot.manifestMeta[key] !== undefined : false);

  if (meta.name !== undefined) {
    if (fromManifest || (!declared('name') && (!file.name || file.name === DEFAULT_FILE_NAME))) {
      file.name = meta.name;
    }
  }
  for (const key of META_KEYS) {
    if (meta[key] === undefined) continue;
    if (fromManifest || (!declared(key) && file[key] === undefined)) file[key] = meta[key];
  }
}

function isFileSentinel(value) {
  return !!value && typeof value === 'object' && value.$runnerFile === 'File' && typeof value.id === 'string';
}

// Copy of `input` with every file sentinel replaced by its InputFile. Like the reference, other
// objects are rebuilt from their own enumerable keys (a class instance becomes a plain object).
function hydrate(input, fileFor) {
  const walk = (value) => {
    if (!value || typeof value !== 'object') return value;
    if (isFileSentinel(value)) return fileFor(value.id, value.meta).file;
    if (Array.isArray(value)) return value.map(walk);
    const copy = {};
    for (const key of Object.keys(value)) copy[key] = walk(value[key]);
    return copy;
  };
  return walk(input);
}

class LimitExceeded extends Error {
  constructor(response) {
    super('Multipart limit exceeded');
    this.response = response;
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * @param {import('node:stream').Readable} req  raw request body
 * @param {Record<string, string>} headers      lower-case request headers (content-type needed)
 * @param {{ serializer: { parse(text: string): unknown }, limits?: object, signal?: AbortSignal }} opts
 */
function parseMultipart(req, headers, opts = {}) {
  const { serializer, signal } = opts;
  // As the reference: user limits replace the defaults as a whole (busboy applies its own
  // defaults for the keys left out).
  const limits = opts.limits === undefined ? DEFAULT_LIMITS : opts.limits;

  return new Promise((resolveReady) => {
    const slots = new Map(); // id -> { id, file, stream, connected, expected, manifestMeta }
    let ready = false;
    let finalized = false;
    let manifestText = '';
    let manifestBytes = 0;
    let parser = null;
    let resolveFinalize;
    const finalize = new Promise((resolve) => {
      resolveFinalize = resolve;
    });

    const settle = (outcome) => {
      if (finalized) return;
      finalized = true;
      resolveFinalize(outcome);
    };

    const fail = (response) => {
      // Stop feeding the parser and drain the rest of the body. (The reference means to do the
      // same but calls `unpipe` / `resume` unbound, which throws and is swallowed: there busboy
      // goes on parsing the rest. The answers are the same either way.)
      try {
        if (parser) req.unpipe(parser);
      } catch {
        /* ignore */
      }
      try {
        req.resume();
      } catch {
        /* ignore */
      }
      const reason = new Error();
      for (const slot of slots.values()) {
        if (slot.stream.destroyed) continue;
        try {
          slot.stream.destroy(reason);
        } catch {
          try {
            slot.stream.end();
          } catch {
            /* ignore */
          }
        }
      }
      settle({ ok: false, response });
      if (!ready) {
        ready = true;
        resolveReady({ ok: false, response });
      }
    };

    // The slot of file `id`, created on first sight (from the manifest or from its part).
    const slotFor = (id, meta, fromManifest = true) => {
      let slot = slots.get(id);
      if (!slot) {
        const maxFiles = limits.files;
        if (typeof maxFiles === 'number' && slots.size >= maxFiles) {
          throw new LimitExceeded(tooLarge('Files limit exceeded'));
        }
        const stream = new PassThrough();
        stream.on('error', () => {});
        slot = {
          id,
          file: new InputFile({ name: meta?.name ?? DEFAULT_FILE_NAME }, stream),
          stream,
          connected: false,
          expected: false,
          manifestMeta: undefined,
        };
        slots.set(id, slot);
      }
      if (meta) mergeMeta(slot, meta, fromManifest);
      if (fromManifest) slot.expected = true;
      return slot;
    };

    try {
      parser = busboy({ headers, limits });
    } catch {
      fail(invalidPayload());
      return;
    }

    const onField = (name, value, info) => {
      if (info.nameTruncated || info.valueTruncated) {
        fail(tooLarge('Field limit exceeded'));
        return;
      }
      if (name !== MANIFEST_FIELD) return;
      try {
        const text = typeof value === 'string' ? value : String(value);
        const maxFieldSize = limits.fieldSize;
        if (typeof maxFieldSize === 'number') {
          // Repeated manifest fields accumulate (and are re-parsed as one text).
          const bytes = Buffer.byteLength(text, 'utf8');
          if (manifestBytes + bytes > maxFieldSize) {
            fail(tooLarge('Field limit exceeded'));
            return;
          }
          manifestBytes += bytes;
        }
        manifestText += text;
        const manifest = manifestText ? serializer.parse(manifestText) : undefined;
        if (!manifest || typeof manifest !== 'object') {
          fail(missingManifest());
          return;
        }
        if (!ready) {
          const value = hydrate(manifest.input, slotFor);
          ready = true;
          resolveReady({ ok: true, value, finalize });
        }
      } catch (err) {
        fail(err instanceof LimitExceeded ? err.response : invalidManifest());
      }
    };

    const onFile = (name, part, info) => {
      if (typeof name !== 'string' || !name.startsWith(FILE_PART_PREFIX)) {
        part.resume();
        return;
      }
      const meta = { name: info.filename, type: info.mimeType };
      let slot;
      try {
        slot = slotFor(name.slice(FILE_PART_PREFIX.length), meta, false);
      } catch (err) {
        // Only a limit can throw here (or `limits: null`, which crashes the reference's process).
        fail(err instanceof LimitExceeded ? err.response : invalidPayload());
        part.resume();
        return;
      }
      slot.connected = true;
      part.on('limit', () => fail(tooLarge('File size limit exceeded')));
      part.on('error', () => fail(streamError()));
      // Backpressure: busboy stops reading the body while the task has not read this file.
      part.pipe(slot.stream);
    };

    const onDone = () => {
      if (!ready) {
        fail(missingManifest());
        return;
      }
      for (const slot of slots.values()) {
        if (slot.expected && !slot.connected) {
          fail(missingFilePart(slot.id));
          return;
        }
        if (slot.manifestMeta) mergeMeta(slot, slot.manifestMeta, true);
      }
      settle({ ok: true });
    };

    parser.on('field', onField);
    parser.on('file', onFile);
    parser.on('fieldsLimit', () => fail(tooLarge('Fields limit exceeded')));
    parser.on('filesLimit', () => fail(tooLarge('Files limit exceeded')));
    parser.on('partsLimit', () => fail(tooLarge('Parts limit exceeded')));
    // `on`, not `once`: busboy may emit several errors (a malformed part header, then the end of
    // the form); only the first one matters.
    parser.on('error', () => fail(invalidPayload()));
    parser.on('finish', onDone);
    parser.on('close', onDone);

    const onAbort = () => fail(clientClosed());
    req.on('error', onAbort);
    if (signal) {
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
    }
    if (!ready) req.pipe(parser);
  });
}

// ---------------------------------------------------------------------------------------------
// What the reference answers over HTTP for one of the responses above: createTaskHandler passes
// them through `sanitizeErrorResponse`, which (as none of them carries a typed-error id) replaces
// the message of a 500 with 'Internal Error' and keeps the code.

function toHttpResponse(response) {
  if (response.status !== 500) return response;
  const { code } = response.body.error;
  return {
    status: 500,
    body: { ok: false, error: { message: 'Internal Error', code: typeof code === 'string' ? code : 'INTERNAL_ERROR' } },
  };
}

module.exports = { parseMultipart, InputFile, isMultipart, toHttpResponse, DEFAULT_LIMITS };
