import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

export type HttpResult = APIGatewayProxyStructuredResultV2 & { statusCode: number };

// Type-only marks: what a result's body is, so a route's handler can be checked against the
// schemas the route table declares for its answers. Nothing reads them at run time.
declare const jsonBody: unique symbol;
declare const mediaType: unique symbol;

/** A JSON answer with a body of type `B`. */
export type JsonResult<S extends number = number, B = unknown> = HttpResult & {
  statusCode: S;
  readonly [jsonBody]: B;
};

/** An answer of another media type (`text/csv`, `text/html`, ...), without its parameters. */
export type MediaResult<S extends number = number, M extends string = string> = HttpResult & {
  statusCode: S;
  readonly [mediaType]: M;
};

/** An answer with this status and any body (or none). */
export type StatusResult<S extends number = number> = HttpResult & { statusCode: S };

type WithoutParameters<C extends string> = C extends `${infer M};${string}` ? M : C;

export function json<S extends number, B>(
  statusCode: S,
  body: B,
  headers: Record<string, string> = {},
): JsonResult<S, B> {
  return {
    statusCode,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(body),
  } as unknown as JsonResult<S, B>;
}

export function noContent(headers: Record<string, string> = {}): StatusResult<204> {
  return { statusCode: 204, headers };
}

export function text<S extends number, C extends string>(
  statusCode: S,
  body: string,
  contentType: C,
  headers: Record<string, string> = {},
): MediaResult<S, WithoutParameters<C>> {
  const result: HttpResult = { statusCode, headers: { 'Content-Type': contentType, ...headers }, body };
  return result as MediaResult<S, WithoutParameters<C>>;
}
