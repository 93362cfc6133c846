/**
 * A lean keep-alive HTTP client for the load: plain `node:http` with one pooled connection per
 * caller, so the client (which shares this process and its event loop with the service) spends as
 * little as it can of the time being measured.
 */
import { Agent, request } from 'node:http';

export interface HttpAnswer {
  status: number;
  body: string;
}

export class BenchHttpClient {
  private readonly agent: Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(baseUrl: string, maxSockets = 64) {
    const url = new URL(baseUrl);
    this.host = url.hostname;
    this.port = Number(url.port);
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  send(
    method: string,
    path: string,
    body: string | Buffer | undefined,
    headers: Record<string, string> = {},
  ): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const outgoing = request(
        {
          host: this.host,
          port: this.port,
          path,
          method,
          agent: this.agent,
          headers: {
            ...headers,
            ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          response.on('error', reject);
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** PUTs a body to a (presigned) URL with its own short-lived connection; throws unless 2xx. */
export async function putTo(url: string, headers: Record<string, string>, body: Buffer): Promise<void> {
  const target = new URL(url);
  const client = new BenchHttpClient(target.origin, 1);
  try {
    const answer = await client.send('PUT', `${target.pathname}${target.search}`, body, headers);
    if (answer.status < 200 || answer.status >= 300)
      throw new Error(`PUT ${target.pathname}: ${answer.status} ${answer.body.slice(0, 500)}`);
  } finally {
    client.close();
  }
}
