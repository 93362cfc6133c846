/**
 * IAM checked on every AWS call the functions make in the tests. The emulator enforces no IAM, so
 * each function's containers get AWS endpoints of their own: a loopback reverse proxy per function
 * (AWS_ENDPOINT_URL_DYNAMODB/_S3/_SQS all point at it), which knows whose request it forwards.
 * Each request becomes the (action, resource ARN) pairs AWS would authorize (iam-actions.ts), decided
 * against that function's role policy from the synthesized template by an IAM policy simulator
 * (iam-policies.ts):
 * - allowed: forwarded to the real emulator, bodies streamed (only DynamoDB's and SQS's JSON and
 *   a DeleteObjects body, all small, are read first);
 * - denied: answered as AWS would (403 AccessDenied for S3, AccessDeniedException for DynamoDB and
 *   SQS; a DeleteObjects answers 200 with each denied key in `Errors`) and recorded, so the calling
 *   test sees the failure and the test file fails when its stack stops (test/support/local-stack.ts).
 * A presigned URL that a function hands out points at its proxy too and, as on AWS, is checked
 * against the signer's role when the client sends it. Which grants the calls used goes to test-artifacts/iam/, and the global
 * teardown lists the grants no test exercised (test-artifacts/iam-report.json).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { AwsEndpoints } from '../../infra/local/aws-endpoints.ts';
import { endpointEnvironment } from '../../infra/local/aws-endpoints.ts';
import type { LocalResources } from '../../infra/local/provision.ts';
import { REPO_ROOT } from '../../infra/paths.ts';
import { forwardedHeaders } from './aws-requests.ts';
import {
  deleteObjectsKeys,
  dynamoDbCalls,
  escapeXml,
  type IamCall,
  LOCAL_ACCOUNT,
  s3Calls,
  sqsCalls,
} from './iam-actions.ts';
import { RoleEvaluator, type RolePolicies } from './iam-policies.ts';

export const IAM_ARTIFACTS = join(REPO_ROOT, 'test-artifacts', 'iam');
export const IAM_POLICIES_FILE = join(IAM_ARTIFACTS, 'role-policies.json');
export const IAM_RUNS_DIR = join(IAM_ARTIFACTS, 'runs');
export const IAM_REPORT_FILE = join(REPO_ROOT, 'test-artifacts', 'iam-report.json');

export interface Denial {
  function: string;
  command: string;
  action: string;
  resource: string;
  decision: string;
}

/** What one test stack's proxies saw, written when it stops. */
export interface IamRun {
  denials: Denial[];
  exercised: string[];
  /** Per function, `action` → requests. */
  calls: Record<string, Record<string, number>>;
}

const MAX_BUFFERED_BODY = 32 * 1024 * 1024;

export class IamCheck {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  private readonly evaluators = new Map<string, RoleEvaluator>();
  private resources: LocalResources | undefined;
  private readonly denied: Denial[] = [];
  private readonly exercised = new Set<string>();
  private readonly calls: Record<string, Record<string, number>> = {};

  private constructor(
    private readonly policies: RolePolicies,
    private readonly upstreams: AwsEndpoints,
    private readonly servers: Map<string, { server: Server; url: string }>,
  ) {}

  /** One proxy per function of `policies`, forwarding to `upstreams`. */
  static async start(policies: RolePolicies, upstreams: AwsEndpoints): Promise<IamCheck> {
    const servers = new Map<string, { server: Server; url: string }>();
    const check = new IamCheck(policies, upstreams, servers);
    await Promise.all(
      Object.keys(policies).map(async (name) => {
        const server = createServer((req, res) => {
          check.handle(name, req, res).catch((error: unknown) => {
            if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
            res.end(`iam check: ${(error as Error).message}`);
          });
        });
        server.keepAliveTimeout = 60_000;
        const port = await new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
        });
        servers.set(name, { server, url: `http://127.0.0.1:${port}` });
      }),
    );
    // The simulator loads its IAM data on first use (seconds): before any function waits on it.
    await warmUp();
    return check;
  }

  /** Reads the role policies the global setup wrote for this run. */
  static policiesOfRun(): RolePolicies {
    return JSON.parse(readFileSync(IAM_POLICIES_FILE, 'utf8')) as RolePolicies;
  }

  /** The endpoints of one function's containers (startLocalStack's `functionEnvironment`). */
  environmentFor(name: string, resources: LocalResources): Record<string, string> {
    this.resources ??= resources;
    const proxy = this.servers.get(name);
    if (!proxy) throw new Error(`No IAM-checked endpoint for the ${name} function (not in the template?)`);
    return endpointEnvironment({ dynamodb: proxy.url, s3: proxy.url, sqs: proxy.url });
  }

  denials(): Denial[] {
    return [...this.denied];
  }

  private evaluator(name: string): RoleEvaluator {
    let evaluator = this.evaluators.get(name);
    if (!evaluator) {
      if (!this.resources) throw new Error('The IAM check has no resources yet');
      evaluator = new RoleEvaluator(name, this.policies[name] ?? [], this.resources);
      this.evaluators.set(name, evaluator);
    }
    return evaluator;
  }

  private async handle(name: string, incoming: IncomingMessage, answer: ServerResponse): Promise<void> {
    const method = incoming.method ?? 'GET';
    const url = incoming.url ?? '/';
    const target = incoming.headers['x-amz-target'];
    if (typeof target === 'string') {
      const [prefix = '', command = ''] = target.split('.', 2);
      const service = prefix.startsWith('DynamoDB') ? 'dynamodb' : prefix === 'AmazonSQS' ? 'sqs' : undefined;
      if (!service) throw new Error(`Unknown X-Amz-Target ${target}`);
      const body = await readBody(incoming);
      const json: unknown = body.length ? JSON.parse(body.toString('utf8')) : {};
      const calls = service === 'dynamodb' ? dynamoDbCalls(command, json) : sqsCalls(command, json);
      const denied = await this.check(name, `${service}:${command}`, calls);
      if (denied) {
        const message = `User: arn:aws:sts::${LOCAL_ACCOUNT}:assumed-role/${name} is not authorized to perform: ${denied.action} on resource: ${denied.resource} (iam check: ${denied.decision})`;
        answer.writeHead(400, {
          'content-type': 'application/x-amz-json-1.0',
          'x-amzn-query-error': 'AccessDenied;Sender',
        });
        answer.end(JSON.stringify({ __type: 'com.amazon.coral.service#AccessDeniedException', message }));
        return;
      }
      this.forward(service, method, url, incoming, answer, body);
      return;
    }
    const presigned = new URL(url, 'http://proxy').searchParams.has('X-Amz-Signature');
    const isDeleteObjects = method === 'POST' && /[?&]delete(=|&|$)/.test(url);
    const body = isDeleteObjects ? await readBody(incoming) : undefined;
    const keys = body ? deleteObjectsKeys(body.toString('utf8')) : [];
    const { command, calls } = s3Calls(method, url, incoming.headers, keys);
    // A presigned URL this function handed out is sent by its client, but AWS authorizes it as the
    // signer's request: it is checked against the same role.
    const deniedCalls = await this.decideAll(name, `${presigned ? 'presigned ' : ''}s3:${command}`, calls);
    if (deniedCalls.length === 0) {
      this.forward('s3', method, url, incoming, answer, body);
      return;
    }
    if (body) {
      // As AWS does: the request succeeds and each key it may not delete comes back in Errors.
      // (Keys it may delete are not deleted here; with prefix-wide grants, a request is all or none.)
      const errors = deniedCalls
        .map(
          (call) =>
            `<Error><Key>${escapeXml(call.resource.replace(/^arn:aws:s3:::[^/]+\//, ''))}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`,
        )
        .join('');
      answer.writeHead(200, { 'content-type': 'application/xml' });
      answer.end(
        `<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${errors}</DeleteResult>`,
      );
      return;
    }
    incoming.resume();
    answer.writeHead(403, { 'content-type': 'application/xml' });
    answer.end(
      method === 'HEAD'
        ? undefined
        : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied (iam check: ${name} may not ${escapeXml(deniedCalls[0]?.action ?? '')})</Message></Error>`,
    );
  }

  /** The first denied call, if any. */
  private async check(name: string, command: string, calls: IamCall[]): Promise<Denial | undefined> {
    return (await this.decideAll(name, command, calls))[0];
  }

  private async decideAll(name: string, command: string, calls: IamCall[]): Promise<Denial[]> {
    const evaluator = this.evaluator(name);
    const decisions = await Promise.all(calls.map((call) => evaluator.decide(call)));
    const denials: Denial[] = [];
    const counts = this.calls[name] ?? {};
    this.calls[name] = counts;
    calls.forEach((call, index) => {
      counts[call.action] = (counts[call.action] ?? 0) + 1;
      const decision = decisions[index] ?? 'ImplicitlyDenied';
      if (decision === 'Allowed') {
        for (const grant of evaluator.exercised(call)) this.exercised.add(grant);
      } else {
        const denial = { function: name, command, action: call.action, resource: call.resource, decision };
        denials.push(denial);
        this.denied.push(denial);
      }
    });
    return denials;
  }

  private forward(
    service: keyof AwsEndpoints,
    method: string,
    url: string,
    incoming: IncomingMessage,
    answer: ServerResponse,
    body?: Buffer,
  ): void {
    const upstream = new URL(this.upstreams[service]);
    const headers = forwardedHeaders(incoming.headers);
    const chunked =
      incoming.headers['content-length'] === undefined &&
      /chunked/i.test(incoming.headers['transfer-encoding'] ?? '');
    if (body) {
      headers['content-length'] = String(body.length);
    } else if (chunked) headers['transfer-encoding'] = 'chunked';
    const outgoing = request({
      host: upstream.hostname,
      port: upstream.port,
      method,
      // Host stays as the client signed it (SigV4 covers it); only the socket goes elsewhere.
      path: url,
      headers,
      agent: this.agent,
    });
    outgoing.on('error', (error) => {
      if (!answer.headersSent) {
        answer.writeHead(502, { 'content-type': 'text/plain' });
        answer.end(`iam check proxy: ${error.message}`);
      } else answer.destroy(error);
    });
    outgoing.on('response', (upstreamAnswer) => {
      answer.writeHead(upstreamAnswer.statusCode ?? 502, forwardedHeaders(upstreamAnswer.headers));
      upstreamAnswer.pipe(answer);
      upstreamAnswer.on('error', (error) => answer.destroy(error));
    });
    answer.on('close', () => {
      if (!answer.writableFinished) outgoing.destroy();
    });
    if (body) {
      outgoing.end(body);
    } else {
      incoming.on('error', () => outgoing.destroy());
      incoming.pipe(outgoing);
    }
  }

  /**
   * Stops the proxies and writes what they saw for the run's report (not when `report` is false: the
   * check's own tests make calls to be denied).
   */
  async close({ report = true }: { report?: boolean } = {}): Promise<IamRun> {
    await Promise.all(
      [...this.servers.values()].map(
        ({ server }) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
    this.agent.destroy();
    const run: IamRun = { denials: this.denials(), exercised: [...this.exercised].sort(), calls: this.calls };
    if (!report) return run;
    mkdirSync(IAM_RUNS_DIR, { recursive: true });
    writeFileSync(
      join(IAM_RUNS_DIR, `${process.pid}-${randomBytes(4).toString('hex')}.json`),
      JSON.stringify(run),
    );
    return run;
  }
}

let warm: Promise<unknown> | undefined;
function warmUp(): Promise<unknown> {
  warm ??= Promise.all(
    ['dynamodb:GetItem', 's3:GetObject', 'sqs:SendMessage'].map((action) =>
      new RoleEvaluator('warm-up', [{ effect: 'Allow', actions: [action], resources: ['*'] }], {
        tableName: 't',
        modelsBucket: 'm',
        batchBucket: 'b',
        modelQueueUrl: 'q',
        batchQueueUrl: 'q',
        modelDeadLetterQueueUrl: 'q',
        batchDeadLetterQueueUrl: 'q',
        notificationQueueUrl: 'q',
        notificationDeadLetterQueueUrl: 'q',
      }).decide({
        action,
        resource: action.startsWith('s3')
          ? 'arn:aws:s3:::b/k'
          : action.startsWith('sqs')
            ? `arn:aws:sqs:us-east-1:${LOCAL_ACCOUNT}:q`
            : `arn:aws:dynamodb:us-east-1:${LOCAL_ACCOUNT}:table/t`,
      }),
    ),
  );
  return warm;
}

async function readBody(incoming: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming) {
    size += (chunk as Buffer).length;
    if (size > MAX_BUFFERED_BODY) throw new Error('A request body too large to read for the IAM check');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** `batch-worker s3:DeleteObject on arn:aws:s3:::…/results/….parts/0 (ImplicitlyDenied, s3:DeleteObjects)` */
export function describeDenials(denials: Denial[]): string {
  return denials
    .map((d) => `${d.function} ${d.action} on ${d.resource} (${d.decision}, ${d.command})`)
    .join('\n');
}
