/** Assertions for RFC 9457 problem+json answers. */
import { expect } from 'vitest';
import type { ApiResponse } from './api.ts';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { path: string; message: string }[];
  [extension: string]: unknown;
}

/** Checks the status, the media type and the required members; returns the body. */
export function expectProblem(response: ApiResponse, status: number, slug: string): Problem {
  expect(
    { status: response.status, body: response.body },
    `expected a ${status} ${slug} problem, got ${response.status} ${JSON.stringify(response.body)}`,
  ).toMatchObject({ status, body: { type: `/problems/${slug}`, status } });
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const body = response.body as Problem;
  expect(body.title).toEqual(expect.any(String));
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.detail).toEqual(expect.any(String));
  expect(body.detail.length).toBeGreaterThan(0);
  // Never a stack trace.
  expect(JSON.stringify(body)).not.toMatch(/\bat .+\.(ts|js):\d+/);
  return body;
}

/** The `errors[].path` values of a validation problem. */
export function errorPaths(problem: Problem): string[] {
  return (problem.errors ?? []).map((error) => error.path);
}
