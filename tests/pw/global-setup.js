// Starts one private redis-server on a free port for the whole run (each test's gateway uses its
// own key prefix on it) and returns the teardown that stops it.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort, binary } from './lib/processes.js';

export default async function globalSetup() {
  if (!existsSync(binary())) {
    throw new Error(`${binary()} is missing: run \`cargo build -p helpline-gateway\` first (scripts/test does)`);
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'helpline-pw-redis-'));
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  redis.on('error', (e) => {
    throw new Error(`redis-server could not start (apt-get install redis-server): ${e.message}`);
  });
  await waitForPort(port);
  process.env.HELPLINE_PW_REDIS_PORT = String(port);
  return async () => {
    redis.kill('SIGTERM');
    await new Promise((resolve) => {
      if (redis.exitCode !== null) resolve();
      else redis.once('exit', resolve);
      setTimeout(resolve, 3000);
    });
    rmSync(dir, { recursive: true, force: true });
  };
}
