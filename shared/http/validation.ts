import type { z } from 'zod';
import { variantMeant } from '../api/schemas.ts';
import { type FieldError, ValidationError } from '../domain/errors.ts';

export type Location = 'body' | 'query' | 'path' | 'header';

function pointer(location: Location, path: PropertyKey[]): string {
  if (location === 'body')
    return `/${path.map((p) => String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`;
  return [location, ...path.map(String)].join('.');
}

export function fieldErrors(location: Location, error: z.ZodError): FieldError[] {
  return error.issues.flatMap((issue): FieldError[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        path: pointer(location, [...issue.path, key]),
        message: 'is not a known field',
      }));
    }
    return [{ path: pointer(location, issue.path), message: issue.message }];
  });
}

/** Validates one part of a request; a mismatch is a 400 naming every offending field. */
export function parseRequest<S extends z.ZodType>(
  schema: S,
  value: unknown,
  location: Location,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  // Of a union that no variant fits, report the errors of the variant the client meant.
  const variant = variantMeant(schema, value);
  const errors = fieldErrors(location, variant?.safeParse(value).error ?? result.error);
  const first = errors[0];
  const summary = first ? `${first.path}: ${first.message}` : 'invalid';
  throw new ValidationError(
    errors.length === 1
      ? `The ${location} is not valid (${summary}).`
      : `The ${location} has ${errors.length} problems (first: ${summary}).`,
    errors,
  );
}
