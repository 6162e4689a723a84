'use strict';

// Which tasks and events nativeExposure serves: the reference's allow-list
// rule over the store's server-mode tunnel resources, and the native
// server's copy of it kept in step with the store.

const { globals } = require('./peer.js');
const { safeLog } = require('./log.js');
const { errorMessage } = require('../logging.js');

const TUNNEL_TAG_ID = globals.tags.tunnel.id;

/** The reference's computeAllowList (src/node/tunnel/allowlist.ts). */
function computeAllowList(store, onSelectorError) {
  const taskIds = new Set();
  const eventIds = new Set();
  const taskAcceptsAsyncContext = new Map();
  const eventAcceptsAsyncContext = new Map();
  const merge = (target, id, accepts) => {
    const current = target.get(id);
    target.set(id, current === undefined ? accepts : current && accepts);
  };
  const resourceEntries = Array.from(store.resources?.values() ?? []);
  const tunnelEntries = resourceEntries.filter((e) => e.resource.tags?.some((t) => t?.id === TUNNEL_TAG_ID));
  const collect = (selector, storeMap, pick, ids, accepts, kind, tunnelResourceId, acceptsAsyncContext) => {
    if (!selector) return;
    if (typeof selector === 'function') {
      for (const entry of storeMap.values()) {
        const def = pick(entry);
        try {
          if (selector(def)) {
            ids.add(def.id);
            merge(accepts, def.id, acceptsAsyncContext);
          }
        } catch (error) {
          onSelectorError({ selectorKind: kind, candidateId: def.id, tunnelResourceId, error });
        }
      }
    } else if (Array.isArray(selector)) {
      for (const item of selector) {
        if (typeof item === 'string') {
          ids.add(item);
          merge(accepts, item, acceptsAsyncContext);
        } else if (item && typeof item === 'object' && item.id) {
          ids.add(item.id);
          merge(accepts, item.id, acceptsAsyncContext);
        }
      }
    }
  };
  for (const entry of tunnelEntries) {
    const v = entry?.value;
    if (!v || typeof v !== 'object') continue;
    if (v.mode !== 'server' && v.mode !== 'both') continue;
    if (v.transport && v.transport !== 'http') continue;
    const tunnelResourceId = entry.resource.id;
    const acceptsAsyncContext = v.allowAsyncContext !== false;
    collect(
      v.tasks,
      store.tasks,
      (st) => st.task,
      taskIds,
      taskAcceptsAsyncContext,
      'task',
      tunnelResourceId,
      acceptsAsyncContext,
    );
    collect(
      v.events,
      store.events,
      (se) => se.event,
      eventIds,
      eventAcceptsAsyncContext,
      'event',
      tunnelResourceId,
      acceptsAsyncContext,
    );
  }
  const enabled = tunnelEntries.some(
    (e) =>
      (e?.value?.mode === 'server' || e?.value?.mode === 'both') &&
      (!e.value.transport || e.value.transport === 'http'),
  );
  return { enabled, taskIds, eventIds, taskAcceptsAsyncContext, eventAcceptsAsyncContext };
}

/**
 * The native server's allow-list, kept in step with the store. The reference
 * recomputes it per request; here it is pushed to the native side whenever it
 * may have changed: on `refresh()`, and, once `follow()` is called, when a
 * tunnel resource finishes initialising and on globals.events.ready.
 */
class AllowListSync {
  constructor({ store, eventManager, logger, server, allowOpen }) {
    this._store = store;
    this._eventManager = eventManager;
    this._logger = logger;
    this._server = server;
    this._allowOpen = allowOpen;
    this._pushed = undefined;
    this._active = true;
    this._recordWrapper = undefined;
    this._previousRecord = undefined;
    this._reportSelectorError = ({ selectorKind, candidateId, tunnelResourceId, error }) =>
      safeLog(logger, 'warn', '[runner] Tunnel allow-list selector failed; item skipped.', {
        selectorKind,
        candidateId,
        tunnelResourceId,
        error: error instanceof Error ? error : new Error(String(error)),
      });
    /** The last list computed (what the call handlers read their async-context policy from). */
    this.current = { taskAcceptsAsyncContext: new Map(), eventAcceptsAsyncContext: new Map() };
  }

  /** Recomputes the list, pushes it when it changed; returns what discovery lists. */
  refresh() {
    const list = computeAllowList(this._store, this._reportSelectorError);
    this.current = list;
    const json = JSON.stringify({
      enabled: list.enabled,
      allowOpen: this._allowOpen,
      tasks: Array.from(list.taskIds),
      events: Array.from(list.eventIds),
    });
    if (json !== this._pushed) {
      this._server.setAllowList(JSON.parse(json));
      this._pushed = json;
    }
    return { enabled: list.enabled, tasks: Array.from(list.taskIds), events: Array.from(list.eventIds) };
  }

  /**
   * Keeps the list current while the rest of the app initialises (tunnel
   * resources may initialise after the exposure, or lazily after start-up).
   */
  follow() {
    const store = this._store;
    const isTunnel = (resourceId) =>
      !!store.resources.get(resourceId)?.resource.tags?.some((t) => t?.id === TUNNEL_TAG_ID);
    this._previousRecord = Object.prototype.hasOwnProperty.call(store, 'recordResourceInitialized')
      ? store.recordResourceInitialized
      : undefined;
    const originalRecord = store.recordResourceInitialized;
    if (typeof originalRecord === 'function') {
      const sync = this;
      this._recordWrapper = function recordResourceInitialized(resourceId) {
        const out = originalRecord.apply(this, arguments);
        if (sync._active && isTunnel(resourceId)) {
          try {
            sync.refresh();
          } catch (err) {
            safeLog(sync._logger, 'error', 'exposure.allowList.error', { error: errorMessage(err) });
          }
        }
        return out;
      };
      store.recordResourceInitialized = this._recordWrapper;
    }
    try {
      this._eventManager.addListener(globals.events.ready, () => {
        if (this._active) this.refresh();
      });
    } catch {
      // the event manager is locked (lazy initialisation after start-up)
    }
  }

  /** Stops following the store and puts back what `follow()` replaced. */
  stop() {
    this._active = false;
    const store = this._store;
    if (this._recordWrapper && store.recordResourceInitialized === this._recordWrapper) {
      if (this._previousRecord === undefined) delete store.recordResourceInitialized;
      else store.recordResourceInitialized = this._previousRecord;
    }
  }
}

module.exports = { TUNNEL_TAG_ID, computeAllowList, AllowListSync };
