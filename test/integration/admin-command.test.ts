import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { endpointEnvironment } from '../../infra/local/aws-endpoints.ts';
import { repositoryRoot } from '../../infra/local/emulator.ts';
import { Api } from '../support/api.ts';
import { useLocalStack } from '../support/local-stack.ts';

const local = useLocalStack();

function createAdmin(args: string[], password: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repositoryRoot, 'infra/ops/create-admin.ts'), ...args],
      {
        cwd: repositoryRoot,
        env: {
          PATH: process.env.PATH ?? '',
          ...endpointEnvironment(local.stack.endpoints),
          AWS_REGION: local.stack.region,
          AWS_ACCESS_KEY_ID: 'local',
          AWS_SECRET_ACCESS_KEY: 'local',
          SCRYPT_LOG2_N: '12',
          LOG_LEVEL: 'SILENT',
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.stdin.end(`${password}\n`);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('npm run admin:create, the deployed stack’s first admin', () => {
  it('creates an admin from a password on standard input, who can then use admin routes', async () => {
    const email = 'ops@example.com';
    const result = await createAdmin(
      ['--table', local.stack.resources.tableName, '--stage', 'dev', '--email', email],
      'a-long-passphrase',
    );
    expect(result.output).toContain('Admin ready: ops@example.com');
    expect(result.code).toBe(0);
    const api = new Api(local.url);
    const tokens = await api.post('/v1/tokens', { email, password: 'a-long-passphrase' });
    expect(tokens.status).toBe(200);
    const me = await api.as(tokens.body.accessToken).get('/v1/users/me');
    expect(me.body.role).toBe('admin');
    expect((await api.as(tokens.body.accessToken).get('/v1/admin/stats')).status).toBe(200);
  });

  it('refuses a short password and missing arguments without creating anyone', async () => {
    const short = await createAdmin(
      ['--table', local.stack.resources.tableName, '--email', 'x@example.com'],
      'short',
    );
    expect(short.code).toBe(2);
    expect(short.output).toContain('at least 8 characters');
    const missing = await createAdmin(['--email', 'x@example.com'], 'a-long-passphrase');
    expect(missing.code).toBe(2);
    expect(missing.output).toContain('usage');
    const signIn = await new Api(local.url).post('/v1/tokens', {
      email: 'x@example.com',
      password: 'a-long-passphrase',
    });
    expect(signIn.status).toBe(401);
  });
});
