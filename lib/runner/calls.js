'use strict';

// The bridge between the native server and Runner: each task and event of
// the store is registered on the TunnelServer with a handler that runs it
// through Runner's task runner or event manager, inside the request's
// contexts, and turns a failure into the answer the reference gives.

const { cancellationError } = require('./peer.js');
const { ProtocolError } = require('../../index.js');
const { errorMessage } = require('../logging.js');
const { safeLog } = require('./log.js');
const { JSON_RULE, jsonRuleOf } = require('../serializer-json.js');
const { toProtocolError } = require('./errors.js');
const { ExposureRequestContext, ExposureRequest, withUserContexts } = require('./context.js');

// The TunnelServer answers an event whose handler resolved `undefined` with the
// payload it was sent; Runner's emitWithResult can legitimately resolve
// `undefined` (a hook cleared the payload) and the reference then answers
// `result: undefined`. The event handler returns this marker instead, and the
// serializer handed to the TunnelServer writes it as `undefined`.
const UNDEFINED_RESULT = Object.freeze({ undefinedResult: true });

/** emitWithResult's result as the event handler answers it (UNDEFINED_RESULT for `undefined`). */
const definedResult = (result) => (result === undefined ? UNDEFINED_RESULT : result);

/**
 * The app's serializer, writing UNDEFINED_RESULT as `result: undefined`;
 * where the app's is Runner's own, the server writes as JSON what it writes
 * as JSON (lib/serializer-json.js).
 */
function answerSerializer(serializer) {
  const rule = jsonRuleOf(serializer);
  return {
    [JSON_RULE]: rule && { isPlain: (value) => value !== UNDEFINED_RESULT && rule.isPlain(value) },
    parse: (text) => serializer.parse(text),
    stringify: (value) =>
      serializer.stringify(
        value !== null && typeof value === 'object' && value.result === UNDEFINED_RESULT
          ? { ...value, result: undefined }
          : value,
      ),
  };
}

/** Errors this layer throws to be answered as they are (see failureMapper). */
const ownErrors = new WeakSet();

/**
 * The TunnelServer's `mapError`: what a task or event threw, answered as the
 * reference answers it (logged, then typed or a sanitized 500), except a
 * client that went away (499) and this layer's own errors.
 */
function failureMapper(store, logger) {
  return (err, call) => {
    if (ownErrors.has(err) || cancellationError.is(err)) return err;
    safeLog(logger, 'error', `exposure.${call.kind}.error`, { error: errorMessage(err), requestId: call.requestId });
    return toProtocolError(store, err);
  };
}

/**
 * Registers every task and event of the store on `server`. `allowList` is
 * the AllowListSync whose current list says which ids accept async contexts.
 * A failure is answered through `failureMapper` (the server's `mapError`).
 * The handlers hand back Runner's own promises: with Runner's async contexts
 * on, every promise made here (and every `await`) would run Node's promise
 * hooks too.
 */
function registerCalls(server, { store, taskRunner, eventManager, serializer, basePath, allowList }) {
  const taskHandler = (id) => (input, ctx) => {
    const storeTask = store.tasks.get(id);
    const allow = allowList.current.taskAcceptsAsyncContext.get(id) ?? true;
    const user = withUserContexts(store, serializer, ctx, () => taskRunner.run(storeTask.task, input), allow);
    return ExposureRequestContext.provide(new ExposureRequest(ctx, basePath), user);
  };

  const eventHandler = (id) => (payload, ctx) => {
    const storeEvent = store.events.get(id);
    const returnPayload = ctx.returnPayload;
    if (returnPayload && storeEvent.event.parallel) {
      const err = new ProtocolError(
        400,
        'PARALLEL_EVENT_RETURN_UNSUPPORTED',
        `Event ${id} is marked parallel; returning a payload is not supported.`,
      );
      ownErrors.add(err);
      throw err;
    }
    const allow = allowList.current.eventAcceptsAsyncContext.get(id) ?? true;
    if (!returnPayload) {
      // The answer is `{"ok":true}` whatever emit resolves.
      const emit = () => eventManager.emit(storeEvent.event, payload, 'exposure:http');
      return withUserContexts(store, serializer, ctx, emit, allow)();
    }
    const emit = () => eventManager.emitWithResult(storeEvent.event, payload, 'exposure:http');
    return Promise.resolve(withUserContexts(store, serializer, ctx, emit, allow)()).then(definedResult);
  };

  for (const id of store.tasks.keys()) server.registerTask(id, taskHandler(id));
  for (const id of store.events.keys()) server.registerEvent(id, eventHandler(id));
}

module.exports = { answerSerializer, failureMapper, registerCalls };
