/** The list endpoints' cursors: what each list's codec issues it reads back, and nothing else. */
import { describe, expect, it } from 'vitest';
import {
  auditCursor,
  batchCursor,
  type CursorCodec,
  ledgerCursor,
  modelCursor,
  predictionCursor,
} from '../../shared/domain/cursors.ts';
import { ValidationError } from '../../shared/domain/errors.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64url');

function refusal(codec: CursorCodec<unknown>, cursor: string): unknown {
  try {
    codec.decode(cursor);
  } catch (error) {
    return error;
  }
  return undefined;
}

function expectRefused(codec: CursorCodec<unknown>, cursor: string) {
  const caught = refusal(codec, cursor);
  expect(caught).toBeInstanceOf(ValidationError);
  expect((caught as ValidationError).code).toBe('validation-failed');
  expect((caught as ValidationError).errors).toEqual([{ path: 'query.cursor', message: expect.any(String) }]);
}

describe('ledger cursors', () => {
  it.each([1, 7, 123_456, Number.MAX_SAFE_INTEGER])('round-trips %s', (before) => {
    const cursor = ledgerCursor.encode(before);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(ledgerCursor.decode(cursor)).toBe(before);
  });

  it('are the base64url of {"before": n}, as they always were', () => {
    expect(ledgerCursor.encode(42)).toBe(b64('{"before":42}'));
  });

  it.each([
    ['garbage', 'not a cursor!'],
    ['base64 of non-JSON', b64('hello')],
    ['JSON null', b64('null')],
    ['JSON without before', b64('{}')],
    ['before as a string', b64('{"before":"5"}')],
    ['before zero', b64('{"before":0}')],
    ['before negative', b64('{"before":-3}')],
    ['before fractional', b64('{"before":1.5}')],
    ['before beyond 2^53', b64(`{"before":${2 ** 53 + 2}}`)],
    ['empty', ''],
  ])('rejects %s with a ValidationError', (_label, cursor) => {
    expectRefused(ledgerCursor, cursor);
  });
});

describe('cursors over a position written as text', () => {
  const ulid = '01JABCDEFGHJKMNPQRSTVWXYZ0';

  it.each([
    ['predictions', predictionCursor, ulid],
    ['the audit trail', auditCursor, ulid],
    ['batches', batchCursor, ulid],
    ['models', modelCursor, 'iris#000003|mdl_01JABCDEFG'],
  ])('round-trip a position of %s as its base64url', (_list, codec, position) => {
    const cursor = codec.encode(position);
    expect(cursor).toBe(b64(position));
    expect(codec.decode(cursor)).toBe(position);
  });

  it.each([
    ['predictions', predictionCursor, b64('01jabcdefghjkmnpqrstvwxyz0')],
    ['predictions', predictionCursor, b64(`${ulid}#`)],
    ['the audit trail', auditCursor, b64('not-a-ulid')],
    ['batches', batchCursor, b64('short')],
    ['batches', batchCursor, b64('has a space in it')],
    ['models', modelCursor, b64('iris#3|mdl_01JABCDEFG')],
    ['models', modelCursor, b64('Iris#000003|mdl_01JABCDEFG')],
    ['models', modelCursor, ''],
  ])('refuse a cursor of %s that names no position of its shape', (_list, codec, cursor) => {
    expectRefused(codec, cursor);
  });
});
