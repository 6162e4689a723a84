/// <reference types="node" />
import type { definitions } from '@bluelibs/runner';
import type { NodeExposureConfig, NodeExposureDependencyMap, NodeExposureHttpConfig } from '@bluelibs/runner/node';
import type {
  HealthOptions,
  TlsOptions,
  TunnelServer,
  TunnelServerOptions,
  MetricsOptions,
  AccessRecord,
  ServerStats,
} from './index';

/**
 * The config of `nativeExposure.with(...)`: the same as `nodeExposure.with(...)`.
 * `http.server` (attaching to an existing node:http server) is not supported;
 * without `http.listen` nothing listens (as with nodeExposure). Beyond nodeExposure's:
 * `http.tls`, `http.health` and `http.closeGraceMs`.
 * `limits.multipart` is accepted and ignored (multipart is not parsed yet).
 */
export type NativeExposureConfig = Omit<NodeExposureConfig, 'http'> & { http?: NativeExposureHttpConfig };
/**
 * nodeExposure's `http` config, and the native server's own: `tls` (HTTPS on the same
 * port, see `TlsOptions`), `health` (probes outside `basePath`), `closeGraceMs`, `metrics`
 * (the Prometheus endpoint), `onAccess` (the access log), `listen.reusePort`, and `maxConnections`,
 * `maxInFlight`, `retryAfterSeconds` and `compression` (load shedding and compressed
 * answers), as `TunnelServer` takes them.
 */
export type NativeExposureHttpConfig = Omit<NodeExposureHttpConfig, 'listen'> & {
  /** nodeExposure's `listen`, and `reusePort` (as `TunnelServer`'s: each process of a cluster listens on the port). */
  listen?: NonNullable<NodeExposureHttpConfig['listen']> & { reusePort?: boolean };
} & Pick<TunnelServerOptions, 'maxConnections' | 'maxInFlight' | 'retryAfterSeconds' | 'compression'> & {
    /** One listener for the app's copies in this process's worker threads (`TunnelServer`'s `share`). */
    share?: boolean;
    /** HTTPS on the same port (see `TlsOptions`). */
    tls?: TlsOptions;
    /** Health and readiness probes outside `basePath`, as `TunnelServer`'s `health` option. */
    health?: HealthOptions;
    /** How long disposal lets in-flight calls finish, in ms (default 10000); then they are aborted. */
    closeGraceMs?: number;
    metrics?: MetricsOptions;
    onAccess?: (records: AccessRecord[]) => void | Promise<void>;
  };

/** The value of the `nativeExposure` resource. */
export interface NativeExposureValue {
  /**
   * The native server while it listens (`http.listen` given; its `address()` is
   * node-like, `{ address, family, port, ... }`), otherwise `null`, as nodeExposure's
   * `server` without `listen` or `server`.
   */
  server: TunnelServer | null;
  /** The normalised base path, e.g. `/__runner` (as nodeExposure's `basePath`). */
  basePath: string;
  /** Bound host, port and origin URL (`http://host:port`, `https://` with `http.tls`); `null` without `http.listen`. */
  host: string | null;
  port: number | null;
  url: string | null;
  /** `url` + `basePath`: what Runner's clients take as `baseUrl`. */
  baseUrl: string | null;
  /** Where the metrics are scraped, with `http.metrics` and `http.listen`; otherwise `null`. */
  metricsUrl: string | null;
  /** The server's figures (`TunnelServer.stats()`), with or without `http.metrics`. */
  stats(): ServerStats;
  /**
   * Recomputes the allow-list from the tunnel resources and pushes it to the
   * native side. It is recomputed automatically whenever a tunnel resource
   * finishes initialising and on `globals.events.ready`; call this after
   * changing a tunnel resource's value at runtime.
   */
  refreshAllowList(): { enabled: boolean; tasks: string[]; events: string[] };
  /** Stops the server (also done when the Runner app is disposed). */
  close(): Promise<void>;
  /**
   * nodeExposure's node:http entry points (`handleRequest`, `handleTask`, `handleEvent`,
   * `handleDiscovery`, `createRequestListener`, `createServer`, `attachTo`): requests are
   * parsed and answered by the native listener, never handed to node:http, so these throw
   * a TypeError (code `ERR_NATIVE_EXPOSURE_UNSUPPORTED`) saying so; serve on `http.listen`
   * (behind a proxy for a shared port, README "Runner").
   */
  handleRequest(...args: unknown[]): never;
  handleTask(...args: unknown[]): never;
  handleEvent(...args: unknown[]): never;
  handleDiscovery(...args: unknown[]): never;
  createRequestListener(...args: unknown[]): never;
  createServer(...args: unknown[]): never;
  attachTo(...args: unknown[]): never;
}

/** A drop-in for `nodeExposure` from `@bluelibs/runner`, served by the native server. */
export declare const nativeExposure: definitions.IResource<
  NativeExposureConfig,
  Promise<NativeExposureValue>,
  NodeExposureDependencyMap,
  any,
  { title: string; description: string }
>;

/**
 * What `useExposureContext()` returns inside a task served by nativeExposure. `req` and `res`
 * are minimal stand-ins (`req`: method, url, headers; `res`: statusCode, headersSent,
 * writableEnded), not node:http objects; the rest is as under nodeExposure.
 */
export interface NativeExposureRequestContextValue {
  req: { method: string; url: string; headers: Record<string, string | string[] | undefined> };
  res: { statusCode: number; headersSent: boolean; writableEnded: boolean };
  /** The request target as a WHATWG URL (base `http://localhost`). */
  url: URL;
  basePath: string;
  /** Lower-case names; `x-runner-request-id` is the id echoed on the answer. */
  headers: Record<string, string | string[] | undefined>;
  method?: string;
  /** Aborted when the client goes away, with Runner's cancellation error as reason. */
  signal: AbortSignal;
}

/** The async context `useExposureContext()` reads (id `platform.node.ctx.exposureRequest`). */
export declare const ExposureRequestContext: definitions.IAsyncContext<NativeExposureRequestContextValue>;

export interface AllowListSnapshot {
  enabled: boolean;
  taskIds: Set<string>;
  eventIds: Set<string>;
  taskAcceptsAsyncContext: Map<string, boolean>;
  eventAcceptsAsyncContext: Map<string, boolean>;
}

/** Runner's allow-list rule, as nodeExposure computes it from a store. */
export declare function computeAllowList(
  store: unknown,
  onSelectorError?: (info: {
    selectorKind: 'task' | 'event';
    candidateId: string;
    tunnelResourceId: string;
    error: unknown;
  }) => void,
): AllowListSnapshot;

/** Runner's typed-error rule: the store's error helpers decide. */
export declare function resolveAppErrorExtra(
  store: unknown,
  error: unknown,
): { id?: string; data?: unknown; httpCode?: number } | undefined;
