// A private redis-server for a test: loopback only, a free port, a temporary directory, every write appended and
// synced (so a restart keeps the queue), stopped by the test. Missing redis-server: `missing` says why (CI installs it).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export const redisBinary = ((): string | undefined => {
  const r = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
})();

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  #child: ChildProcess | undefined;
  constructor(readonly dir: string, readonly port: number, readonly password: string) {}

  get url(): string {
    return `redis://:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    const child = spawn(redisBinary as string, [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--requirepass', this.password,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--logfile', path.join(this.dir, 'redis.log'),
    ], { stdio: 'ignore' });
    this.#child = child;
    const deadline = Date.now() + 10000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}); see ${this.dir}/redis.log`);
      if (await this.#answers()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('redis-server did not start within 10 s');
  }

  #answers(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect(this.port, '127.0.0.1');
      const pw = Buffer.from(this.password);
      s.once('connect', () => s.write(`*2\r\n$4\r\nAUTH\r\n$${pw.length}\r\n${this.password}\r\nPING\r\n`));
      let got = '';
      s.on('data', (d) => {
        got += d;
        if (got.includes('PONG')) {
          s.destroy();
          resolve(true);
        }
      });
      s.once('error', () => resolve(false));
      s.setTimeout(500, () => {
        s.destroy();
        resolve(false);
      });
    });
  }

  /** SIGTERM (a clean shutdown) and wait for the exit. */
  async stop(): Promise<void> {
    const c = this.#child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await gone;
  }
}
