'use strict';

// The value of the nativeExposure resource: a TunnelServer configured from
// the exposure's `http` config, serving the store's tasks and events behind
// the tunnel resources' allow-list, listening when `http.listen` is given.

const { TunnelServer } = require('../../index.js');
const { safeLog } = require('./log.js');
const { AllowListSync } = require('./allow-list.js');
const { registerCalls } = require('./calls.js');
const { resolveBasePath, serverOptions } = require('./config.js');

/**
 * nodeExposure's entry points for node:http requests, which the native
 * listener never hands to JS: each throws, saying what to use instead.
 */
function nodeHttpEntryPoints() {
  const unsupported = (name) => () => {
    const err = new TypeError(
      `nativeExposure: ${name}() is not supported: requests are parsed and answered by the native listener, not node:http; serve on http.listen (put a proxy in front to share a port)`,
    );
    err.code = 'ERR_NATIVE_EXPOSURE_UNSUPPORTED';
    throw err;
  };
  const names = [
    'handleRequest',
    'handleTask',
    'handleEvent',
    'handleDiscovery',
    'createRequestListener',
    'createServer',
    'attachTo',
  ];
  return Object.fromEntries(names.map((name) => [name, unsupported(name)]));
}

async function createNativeExposure(cfg, deps) {
  const { store, taskRunner, eventManager, logger, serializer } = deps;
  const http = cfg?.http ?? {};
  if (http.server) {
    throw new TypeError(
      'nativeExposure: http.server (attaching to an existing node:http server) is not supported; use http.listen',
    );
  }
  const basePath = resolveBasePath(http.basePath);
  const allowOpen = !!http.dangerouslyAllowOpenExposure;
  const options = serverOptions(http, basePath, deps);
  const server = new TunnelServer(options);

  const allowList = new AllowListSync({ store, eventManager, logger, server, allowOpen });
  registerCalls(server, { store, taskRunner, eventManager, logger, serializer, basePath, allowList });
  allowList.refresh();
  allowList.follow();

  const value = {
    // As nodeExposure's: the server while listening, null without http.listen.
    server: null,
    basePath,
    host: null,
    port: null,
    url: null,
    baseUrl: null,
    metricsUrl: null,
    stats: () => server.stats(),
    refreshAllowList: () => allowList.refresh(),
    close: async () => {
      allowList.stop();
      await server.close();
    },
    ...nodeHttpEntryPoints(),
  };

  if (http.listen) {
    try {
      const address = await server.listen();
      value.server = server;
      value.host = address.host;
      value.port = address.port;
      value.url = address.url;
      value.baseUrl = address.url + (basePath === '/' ? '' : basePath);
      value.metricsUrl = address.metricsUrl ?? null;
    } catch (err) {
      await value.close().catch(() => {});
      throw err;
    }
    safeLog(logger, 'info', 'node.exposure.listen', { basePath, port: http.listen.port, host: options.host });
  }
  return value;
}

module.exports = { createNativeExposure };
