// Real processes for the tests: free ports, the `helpline` binary, a gateway per test.
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(HERE, '../../..');
export const PASSWORD = 'a long test password';
/** Fixed so a test can restart a gateway on the same data. */
export const MASTER_KEY = 'qVbQk0hJr9Cq0sPj3sFfXw2m3l0rS3k0bT8e4yH3u1Q=';

export function binary() {
  return process.env.HELPLINE_BIN || resolve(ROOT, 'target/debug/helpline');
}

export function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

export async function waitForPort(port, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise((ok) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        ok(true);
      });
      socket.once('error', () => ok(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
}

function run(args, env, stdin) {
  return new Promise((ok, fail) => {
    const child = spawn(binary(), args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? ok(out) : fail(new Error(`helpline ${args.join(' ')}: ${err || out}`))));
    child.stdin.end(stdin || '');
  });
}

let counter = 0;

/** The accounts every test gets. */
export const USERS = [
  { username: 'ana', role: 'counsellor', skills: 'ro,ru', capacity: 2, display: 'Ana' },
  { username: 'ion', role: 'counsellor', skills: 'ro', capacity: 2, display: 'Ion' },
  { username: 'maria', role: 'supervisor', skills: 'ro', capacity: 2, display: 'Maria' },
];

/**
 * Starts `helpline serve` on a free port, on the shared redis-server under a key prefix of its own,
 * with the standard accounts. `settings` are extra HELPLINE_… variables.
 */
export async function startGateway(settings = {}) {
  const redisPort = process.env.HELPLINE_PW_REDIS_PORT;
  if (!redisPort) throw new Error('global setup did not start redis-server');
  const port = await freePort();
  counter += 1;
  const prefix = `pw${process.pid}-${counter}-${Date.now() % 100000}:`;
  const env = {
    HELPLINE_REDIS__URL: `redis://127.0.0.1:${redisPort}`,
    HELPLINE_REDIS__KEY_PREFIX: prefix,
    HELPLINE_SECURITY__MASTER_KEY: MASTER_KEY,
    HELPLINE_SERVER__LISTEN: `127.0.0.1:${port}`,
    HELPLINE_SERVER__PUBLIC_URL: `http://127.0.0.1:${port}`,
    HELPLINE_LOG: 'info',
    // These pages tests log supervisors in without one-time codes: TOTP is turned off here on
    // purpose (it is on by default; tests/tests/auth.rs covers it against the real binary).
    HELPLINE_SECURITY__TOTP_ROLES: '',
    ...settings,
  };
  await Promise.all(
    USERS.map((u) =>
      run(
        ['user', 'add', '--username', u.username, '--role', u.role, '--skills', u.skills, '--capacity', String(u.capacity), '--display-name', u.display, '--password-stdin'],
        env,
        PASSWORD,
      ),
    ),
  );
  const logPath = join(tmpdir(), `helpline-pw-gw-${port}.log`);
  const log = openSync(logPath, 'w');
  const child = spawn(binary(), ['serve'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', log] });
  closeSync(log);
  try {
    await waitForPort(port);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${e.message}; gateway log:\n${readFileSync(logPath, 'utf8')}`);
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    prefix,
    redisPort,
    env,
    log: () => readFileSync(logPath, 'utf8'),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((ok) => {
        if (child.exitCode !== null) ok();
        else child.once('exit', ok);
        setTimeout(() => {
          child.kill('SIGKILL');
          ok();
        }, 5000);
      });
      rmSync(logPath, { force: true });
    },
  };
}

/** A Redis command on the shared server (the redis-cli that comes with redis-server). */
export function redis(gw, ...args) {
  return new Promise((ok, fail) => {
    const child = spawn('redis-cli', ['-p', String(gw.redisPort), '--raw', ...args]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', fail);
    child.on('exit', () => ok(out.trim()));
  });
}
