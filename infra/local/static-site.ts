/**
 * The local stand-in for CloudFront and the site bucket: serves the built web UI (web/dist) for the
 * paths that are not the API's, with index.html for the routes of the single-page app, the content
 * types and cache headers the deployed site has, and the same security headers.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import {
  contentSecurityPolicy,
  IMMUTABLE_CACHE_CONTROL,
  REVALIDATE_CACHE_CONTROL,
  WEB_DIST,
} from '../web-stack.ts';

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

export interface StaticSiteOptions {
  /** The built UI (default web/dist). */
  root?: string;
  /** Origins the UI may call besides its own: where presigned uploads go (the emulator's endpoint). */
  connectSources?: () => string[];
}

export type StaticFiles = (request: IncomingMessage, response: ServerResponse) => Promise<boolean>;

/** A `staticFiles` hook for the local gateway. */
export function serveWebApp(options: StaticSiteOptions = {}): StaticFiles {
  const root = resolve(options.root ?? WEB_DIST);
  return async (request, response) => {
    const method = request.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return false;
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://local').pathname);
    } catch {
      return false;
    }
    if (pathname.includes('\0')) return false;

    const headers: Record<string, string> = {
      'content-security-policy': contentSecurityPolicy(options.connectSources?.() ?? [], {
        upgradeInsecureRequests: false,
      }),
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'strict-origin-when-cross-origin',
    };

    const requested = resolve(root, `.${pathname}`);
    const inside = requested === root || requested.startsWith(root + sep);
    let file = inside
      ? await regularFile(requested === root ? join(root, 'index.html') : requested)
      : undefined;
    // Routes of the app have no file extension; a missing file with one is a real 404.
    if (!file && inside && extname(pathname) === '') file = await regularFile(join(root, 'index.html'));

    if (!file) {
      const indexMissing = !(await regularFile(join(root, 'index.html')));
      const status = indexMissing ? 503 : 404;
      const body = indexMissing
        ? `The web UI is not built (${join(root, 'index.html')} is missing): run npm run build:web.\n`
        : 'Not found\n';
      response.writeHead(status, {
        ...headers,
        'content-type': 'text/plain; charset=utf-8',
        'cache-control': 'no-store',
        'content-length': String(Buffer.byteLength(body)),
      });
      response.end(method === 'HEAD' ? undefined : body);
      return true;
    }

    const etag = `W/"${file.size.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"`;
    Object.assign(headers, {
      'content-type': contentTypes[extname(file.path).toLowerCase()] ?? 'application/octet-stream',
      'cache-control': file.path.startsWith(join(root, 'assets') + sep)
        ? IMMUTABLE_CACHE_CONTROL
        : REVALIDATE_CACHE_CONTROL,
      'last-modified': new Date(file.mtimeMs).toUTCString(),
      etag,
    });
    if (request.headers['if-none-match'] === etag) {
      response.writeHead(304, headers);
      response.end();
      return true;
    }
    response.writeHead(200, { ...headers, 'content-length': String(file.size) });
    if (method === 'HEAD') {
      response.end();
      return true;
    }
    await new Promise<void>((done, fail) => {
      createReadStream(file.path).on('error', fail).on('end', done).pipe(response);
    });
    return true;
  };
}

async function regularFile(
  path: string,
): Promise<{ path: string; size: number; mtimeMs: number } | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? { path, size: info.size, mtimeMs: info.mtimeMs } : undefined;
  } catch {
    return undefined;
  }
}

/** Builds web/dist with Vite (what `npm run build:web` does), for `npm run dev`. */
export async function buildWebApp(): Promise<void> {
  const { build } = await import('vite');
  await build({ configFile: join(WEB_DIST, '..', 'vite.config.ts'), logLevel: 'warn' });
}
