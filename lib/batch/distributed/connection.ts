// The Redis URL of a distributed run, and BullMQ, loaded on first use: it is an optional peer dependency, installed
// by those who run batches over many machines (`npm install bullmq`), so that the package stays small for the others.
import { isIP } from 'node:net';
import { rnnkitError } from '../../errors';

/** Connection options in the form BullMQ hands to ioredis. */
export interface RedisConnection {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  /** TLS (a rediss:// URL): the server's certificate is checked against the system's CAs (NODE_EXTRA_CA_CERTS adds one). */
  tls?: { servername?: string };
  maxRetriesPerRequest: null;
  enableOfflineQueue: boolean;
  /** Reconnect after 0.1 s, 0.2 s, ... up to 2 s between tries; never after a fatal error (see fatalRedisError). */
  retryStrategy: (times: number) => number | null;
}

/**
 * redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or rediss://... (TLS). Returns the connection options and the URL with
 * its password masked, for messages.
 */
export function parseRedisUrl(url: string): { connection: RedisConnection; display: string; stopRetrying: () => void } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw rnnkitError('ERR_RNNKIT_ARGUMENT', `not a Redis URL: '${maskPassword(url)}' (expected redis://HOST:PORT or rediss://HOST:PORT)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw rnnkitError('ERR_RNNKIT_ARGUMENT', `a Redis URL starts with redis:// or rediss:// (TLS), got '${u.protocol}//'`);
  if (!u.hostname) throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'the Redis URL names no host');
  const port = u.port ? Number(u.port) : 6379;
  const dbPath = u.pathname.replace(/^\//, '');
  if (dbPath !== '' && !/^\d+$/.test(dbPath)) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `the Redis URL's path must be a database number, got '/${dbPath}'`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  let stop = false;
  const connection: RedisConnection = {
    host, port, maxRetriesPerRequest: null, enableOfflineQueue: true,
    retryStrategy: (times) => (stop ? null : Math.min(100 * times, 2000)),
  };
  if (u.username) connection.username = decodeURIComponent(u.username);
  if (u.password) connection.password = decodeURIComponent(u.password);
  if (dbPath) connection.db = Number(dbPath);
  // SNI takes a host name only; an address is checked against the certificate's IP entries without it.
  if (u.protocol === 'rediss:') connection.tls = isIP(host) ? {} : { servername: host };
  return { connection, display: maskPassword(url), stopRetrying: () => void (stop = true) };
}

/** The URL with any password replaced by ***. */
export function maskPassword(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

/**
 * Errors that reconnecting cannot cure (a wrong password, no permission, a certificate that does not verify): the
 * caller stops with ERR_RNNKIT_CONNECTION instead of retrying forever. Anything else (refused, reset, a restart) is
 * retried by the client.
 */
export function fatalRedisError(e: Error, display: string): Error | undefined {
  const m = `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`;
  if (!/WRONGPASS|NOAUTH|NOPERM|invalid password|CERT|certificate|self[- ]signed|unable to verify|ERR_TLS|ERR_SSL/i.test(m)) return undefined;
  return rnnkitError('ERR_RNNKIT_CONNECTION', `Redis at ${display}: ${e.message}`);
}

/**
 * Connect once before BullMQ does, so that a wrong password or certificate is a clear error at once: BullMQ would
 * retry it forever. A server that does not answer yet is waited for (said once on `log`), until `signal` aborts.
 */
export async function waitForRedis(connection: RedisConnection, display: string, log: (s: string) => void, signal?: AbortSignal): Promise<void> {
  const bull = require.resolve('bullmq');
  const IORedis = require(require.resolve('ioredis', { paths: [bull] })) as typeof import('ioredis').default;
  for (let attempt = 1; ; attempt++) {
    const client = new IORedis({ ...connection, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
    let reported: Error | undefined; // the server's reason (the promise only says the connection closed)
    client.on('error', (e: Error) => (reported ??= e));
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (err) {
      const e = reported ?? (err as Error);
      const fatal = fatalRedisError(e, display);
      if (fatal) throw fatal;
      if (attempt === 1) log(`rnnkit: waiting for Redis at ${display} (${e.message})`);
    } finally {
      client.disconnect();
    }
    if (signal?.aborted) throw rnnkitError('ERR_RNNKIT_CONNECTION', `Redis at ${display} did not answer`);
    await new Promise((r) => setTimeout(r, Math.min(2000, 200 * attempt)));
  }
}

type BullMQ = typeof import('bullmq');
let bullmq: BullMQ | undefined;

/** The bullmq module, or ERR_RNNKIT_DEPENDENCY saying how to install it. */
export function loadBullMQ(): BullMQ {
  if (bullmq) return bullmq;
  try {
    bullmq = require('bullmq') as BullMQ;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
    throw rnnkitError('ERR_RNNKIT_DEPENDENCY', "distributed runs (--queue) use BullMQ, which is not installed: run 'npm install bullmq' beside rnnkit");
  }
  return bullmq;
}
