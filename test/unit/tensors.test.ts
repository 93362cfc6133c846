/**
 * JSON tensors in and out (`parseInputs`, `toJsonTensor`, `outputsToJson`) and the per-user
 * prediction rate limiter, with an injected clock.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../shared/domain/errors.ts';
import type { TensorSpec } from '../../shared/domain/models.ts';
import { RateLimiter } from '../../shared/domain/predictions.ts';
import {
  assertInputNesting,
  type InputTensor,
  MAX_INPUT_NESTING,
  outputsToJson,
  parseInputs,
  toJsonTensor,
} from '../../shared/domain/tensors.ts';

const iris: TensorSpec[] = [{ name: 'input', type: 'float32', shape: [null, 4] }];
const ids: TensorSpec[] = [{ name: 'ids', type: 'int64', shape: [null, 2] }];
const IRIS_ROW_FOR_DEPTH = [5.1, 3.5, 1.4, 0.2];

/** The validation error `parseInputs` throws for these inputs (fails the test if it does not throw). */
function refusal(inputs: unknown, signature: TensorSpec[] = iris, maxRows = 100): ValidationError {
  try {
    parseInputs(inputs, signature, maxRows);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error(`parseInputs accepted ${JSON.stringify(inputs)}`);
}

/** A tensor's elements as a plain array. */
function values(tensor: InputTensor | undefined): (number | bigint)[] {
  return Array.from((tensor?.data ?? []) as ArrayLike<number | bigint>);
}

function paths(error: ValidationError): string[] {
  return (error.errors ?? []).map((e) => e.path);
}

describe('parseInputs', () => {
  it('reads a flat array of F numbers as one row of an [N, F] input', () => {
    const { tensors, rows } = parseInputs({ input: [5.1, 3.5, 1.4, 0.2] }, iris, 10);
    expect(rows).toBe(1);
    expect(tensors).toHaveLength(1);
    const [tensor] = tensors;
    expect(tensor?.name).toBe('input');
    expect(tensor?.type).toBe('float32');
    expect(tensor?.dims).toEqual([1, 4]);
    expect(tensor?.data).toBeInstanceOf(Float32Array);
    expect(values(tensor)).toEqual(Array.from(new Float32Array([5.1, 3.5, 1.4, 0.2])));
  });

  it('reads nested arrays as a tensor whose nesting is the shape, rows being the first dimension', () => {
    const { tensors, rows } = parseInputs(
      {
        input: [
          [1, 2, 3, 4],
          [5, 6, 7, 8],
          [9, 10, 11, 12],
        ],
      },
      iris,
      10,
    );
    expect(rows).toBe(3);
    expect(tensors[0]?.dims).toEqual([3, 4]);
    expect(values(tensors[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('treats the nested form of one row the same as the flat form', () => {
    const flat = parseInputs({ input: [1, 2, 3, 4] }, iris, 10);
    const nested = parseInputs({ input: [[1, 2, 3, 4]] }, iris, 10);
    expect(nested.rows).toBe(flat.rows);
    expect(nested.tensors[0]?.dims).toEqual(flat.tensors[0]?.dims);
    expect(values(nested.tensors[0])).toEqual(values(flat.tensors[0]));
  });

  it('converts numbers to the element type: float64, int32 and bool', () => {
    const signature: TensorSpec[] = [
      { name: 'a', type: 'float64', shape: [null, 1] },
      { name: 'b', type: 'int32', shape: [null] },
      { name: 'c', type: 'bool', shape: [null] },
    ];
    const { tensors, rows } = parseInputs(
      { a: [[0.1], [0.2]], b: [-(2 ** 31), 2 ** 31 - 1], c: [true, false] },
      signature,
      10,
    );
    expect(rows).toBe(2);
    expect(tensors.map((t) => t.data.constructor)).toEqual([Float64Array, Int32Array, Uint8Array]);
    expect(values(tensors[0])).toEqual([0.1, 0.2]);
    expect(values(tensors[1])).toEqual([-(2 ** 31), 2 ** 31 - 1]);
    expect(values(tensors[2])).toEqual([1, 0]);
  });

  it('builds int64 inputs as a BigInt64Array of exact values up to ±(2^53 − 1)', () => {
    const max = Number.MAX_SAFE_INTEGER;
    const { tensors } = parseInputs({ ids: [[max, -max]] }, ids, 10);
    const data = tensors[0]?.data;
    expect(data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(data as BigInt64Array)).toEqual([BigInt(max), BigInt(-max)]);
    // The flat-row form works for int64 too.
    expect(Array.from(parseInputs({ ids: [7, 8] }, ids, 10).tensors[0]?.data as BigInt64Array)).toEqual([
      7n,
      8n,
    ]);
  });

  it('rejects int64 values beyond 2^53 (not exact in JSON) and fractions, naming each element', () => {
    const error = refusal(
      {
        ids: [
          [2 ** 53, 1],
          [-(2 ** 60), 2.5],
        ],
      },
      ids,
    );
    expect(error.errors).toEqual([
      { path: '/inputs/ids/0/0', message: expect.stringContaining('2^53') },
      { path: '/inputs/ids/1/0', message: expect.stringContaining('2^53') },
      { path: '/inputs/ids/1/1', message: expect.stringContaining('integer') },
    ]);
  });

  it('rejects int32 values outside its range and non-booleans for bool', () => {
    const signature: TensorSpec[] = [
      { name: 'n', type: 'int32', shape: [null] },
      { name: 'flag', type: 'bool', shape: [null] },
    ];
    const error = refusal({ n: [2 ** 31], flag: [1] }, signature);
    expect(error.errors).toEqual([
      { path: '/inputs/n/0', message: expect.stringContaining('int32') },
      { path: '/inputs/flag/0', message: expect.stringContaining('true or false') },
    ]);
  });

  it('rejects numbers too large for float32', () => {
    expect(paths(refusal({ input: [1e39, 0, 0, 0] }))).toEqual(['/inputs/input/0/0']);
  });

  it('rejects strings, null, booleans, objects and non-finite numbers where numbers go, each by its path', () => {
    const error = refusal({
      input: [
        ['1', null, 'NaN', 'Infinity'],
        [true, {}, Number.NaN, Number.POSITIVE_INFINITY],
      ],
    });
    expect(paths(error)).toEqual([
      '/inputs/input/0/0',
      '/inputs/input/0/1',
      '/inputs/input/0/2',
      '/inputs/input/0/3',
      '/inputs/input/1/0',
      '/inputs/input/1/1',
      '/inputs/input/1/2',
      '/inputs/input/1/3',
    ]);
    const messages = (error.errors ?? []).map((e) => e.message);
    expect(messages[0]).toMatch(/must be a number, got the string "1"/);
    expect(messages[1]).toMatch(/must be a number, got null/);
    expect(messages[2]).toMatch(/the string "NaN"/);
    expect(messages[6]).toMatch(/finite/);
    expect(messages[7]).toMatch(/finite/);
  });

  it('rejects ragged nested arrays, naming the row that differs', () => {
    const error = refusal({
      input: [
        [1, 2, 3, 4],
        [1, 2, 3],
        [1, 2, 3, 4],
      ],
    });
    expect(error.errors).toEqual([{ path: '/inputs/input/1', message: expect.stringMatching(/ragged/) }]);
    // A scalar mixed in with rows is ragged too (not read as a flat row).
    expect(paths(refusal({ input: [[1, 2, 3, 4], 5] }))).toEqual(['/inputs/input/1']);
  });

  it('rejects empty arrays at any depth', () => {
    expect(refusal({ input: [] }).errors).toEqual([
      { path: '/inputs/input', message: expect.stringMatching(/empty/) },
    ]);
    expect(paths(refusal({ input: [[]] }))).toEqual(['/inputs/input/0']);
    expect(paths(refusal({ input: [[1, 2, 3, 4], []] }))).toEqual(['/inputs/input/1']);
  });

  it('rejects the wrong rank, saying what was expected and what came', () => {
    const deep = refusal({ input: [[[1, 2, 3, 4]]] });
    expect(deep.errors).toEqual([{ path: '/inputs/input', message: expect.stringContaining('rank 2') }]);
    expect(deep.errors?.[0]?.message).toContain('got rank 3');
    expect(deep.errors?.[0]?.message).toContain('[N, 4]');
    // A scalar is rank 0.
    expect(refusal({ input: 5 }).errors?.[0]).toMatchObject({
      path: '/inputs/input',
      message: expect.stringContaining('got rank 0'),
    });
    // Without the flat-row form (two inputs), a flat array is rank 1.
    const two: TensorSpec[] = [
      { name: 'a', type: 'float32', shape: [null, 2] },
      { name: 'b', type: 'float32', shape: [null, 2] },
    ];
    expect(refusal({ a: [1, 2], b: [[1, 2]] }, two).errors).toEqual([
      { path: '/inputs/a', message: expect.stringContaining('got rank 1') },
    ]);
  });

  it('rejects a fixed dimension of the wrong size, in the nested and the flat form', () => {
    const nested = refusal({
      input: [
        [1, 2, 3],
        [4, 5, 6],
      ],
    });
    expect(nested.errors).toEqual([
      { path: '/inputs/input', message: 'dimension 1 must be 4, got 3 (shape [2, 3])' },
    ]);
    expect(refusal({ input: [1, 2, 3, 4, 5] }).errors).toEqual([
      { path: '/inputs/input', message: 'dimension 1 must be 4, got 5 (shape [1, 5])' },
    ]);
  });

  it('rejects unknown and missing input names', () => {
    const error = refusal({ features: [1, 2, 3, 4] });
    expect(error.errors).toEqual([
      { path: '/inputs/features', message: expect.stringContaining('its inputs are input') },
      { path: '/inputs/input', message: expect.stringContaining('required') },
    ]);
    expect(error.message).toContain('/inputs/features');
    // An extra input next to a good one is still refused.
    expect(paths(refusal({ input: [1, 2, 3, 4], extra: [1] }))).toEqual(['/inputs/extra']);
  });

  it('rejects inputs that are not an object keyed by input name', () => {
    for (const inputs of [null, undefined, [1, 2, 3, 4], 'input', 4]) {
      expect(refusal(inputs).errors).toEqual([
        { path: '/inputs', message: expect.stringContaining('"input"') },
      ]);
    }
  });

  it('accepts up to the row limit and refuses one row more', () => {
    const rows = (n: number) => Array.from({ length: n }, (_, i) => [i, i, i, i]);
    expect(parseInputs({ input: rows(5) }, iris, 5).rows).toBe(5);
    const error = refusal({ input: rows(6) }, iris, 5);
    expect(error.errors).toEqual([{ path: '/inputs/input', message: 'has 6 rows, the limit is 5' }]);
    expect(error.message).toMatch(/at most 5 rows/);
  });

  it('counts rows from the first input of the signature, in the model’s order', () => {
    const signature: TensorSpec[] = [
      { name: 'b', type: 'float32', shape: [null] },
      { name: 'a', type: 'float32', shape: [null, 2] },
    ];
    const { rows, tensors } = parseInputs({ a: [[1, 2]], b: [1, 2, 3] }, signature, 10);
    expect(rows).toBe(3);
    expect(tensors.map((t) => t.name)).toEqual(['b', 'a']);
  });

  it('accepts any size in a dynamic dimension other than the first', () => {
    const signature: TensorSpec[] = [{ name: 'seq', type: 'float32', shape: [null, null] }];
    expect(parseInputs({ seq: [[1, 2, 3, 4, 5, 6]] }, signature, 10).tensors[0]?.dims).toEqual([1, 6]);
  });

  it('refuses absurdly deep nesting with a validation error instead of overflowing the stack', () => {
    const deep = (depth: number) => JSON.parse(`${'['.repeat(depth)}1${']'.repeat(depth)}`);
    for (const depth of [MAX_INPUT_NESTING + 1, 10_000, 100_000]) {
      const error = refusal({ input: deep(depth) });
      expect(error.errors).toHaveLength(1);
      expect(error.errors?.[0]?.path).toMatch(/^\/inputs\/input(\/0)+$/);
      expect(error.errors?.[0]?.message).toContain(String(MAX_INPUT_NESTING));
    }
    // Deep objects, and deep arrays hidden behind a good first row, too.
    let object: unknown = 1;
    for (let i = 0; i < 50_000; i++) object = { a: object };
    expect(() => assertInputNesting({ input: object })).toThrow(ValidationError);
    expect(paths(refusal({ input: [IRIS_ROW_FOR_DEPTH, deep(20_000)] }))[0]).toMatch(/^\/inputs\/input\/1/);
    // Ranks well within the limit are judged as usual.
    expect(refusal({ input: deep(10) }).errors?.[0]?.message).toContain('got rank 10');
    expect(() => assertInputNesting({ input: deep(MAX_INPUT_NESTING - 1) })).not.toThrow();
  });

  it('reports at most 20 problems', () => {
    const error = refusal({ input: Array.from({ length: 10 }, () => ['a', 'b', 'c', 'd']) });
    expect(error.errors).toHaveLength(20);
  });
});

describe('toJsonTensor', () => {
  it('turns int64 outputs (BigInt) into JSON numbers', () => {
    const json = toJsonTensor({
      name: 'label',
      type: 'int64',
      dims: [3],
      data: new BigInt64Array([0n, 2n, 1n]),
    });
    expect(json).toEqual([0, 2, 1]);
    expect(JSON.stringify(json)).toBe('[0,2,1]');
    expect((json as unknown[]).every((v) => typeof v === 'number')).toBe(true);
  });

  it('nests the flat data by the dims, row-major', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    expect(toJsonTensor({ name: 'p', type: 'float32', dims: [2, 3], data })).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(toJsonTensor({ name: 'p', type: 'float32', dims: [3, 2], data })).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(toJsonTensor({ name: 'p', type: 'float32', dims: [2, 1, 3], data })).toEqual([
      [[1, 2, 3]],
      [[4, 5, 6]],
    ]);
    expect(
      toJsonTensor({ name: 'v', type: 'float32', dims: [2, 1], data: new Float32Array([7, 8]) }),
    ).toEqual([[7], [8]]);
  });

  it('gives a scalar for a rank-0 tensor and empty arrays for zero-sized dimensions', () => {
    expect(toJsonTensor({ name: 's', type: 'float32', dims: [], data: new Float32Array([2.5]) })).toBe(2.5);
    expect(toJsonTensor({ name: 'e', type: 'float32', dims: [0], data: new Float32Array([]) })).toEqual([]);
    expect(toJsonTensor({ name: 'e', type: 'float32', dims: [2, 0], data: new Float32Array([]) })).toEqual([
      [],
      [],
    ]);
  });

  it('keeps strings and booleans as they are', () => {
    expect(toJsonTensor({ name: 'l', type: 'string', dims: [2], data: ['cat', 'dog'] })).toEqual([
      'cat',
      'dog',
    ]);
    expect(toJsonTensor({ name: 'b', type: 'bool', dims: [1, 2], data: [true, false] })).toEqual([
      [true, false],
    ]);
  });

  it('outputsToJson keys every output by its name', () => {
    expect(
      outputsToJson([
        { name: 'label', type: 'int64', dims: [2], data: new BigInt64Array([1n, 0n]) },
        { name: 'probabilities', type: 'float32', dims: [2, 2], data: new Float32Array([0.25, 0.75, 1, 0]) },
      ]),
    ).toEqual({
      label: [1, 0],
      probabilities: [
        [0.25, 0.75],
        [1, 0],
      ],
    });
  });
});

describe('RateLimiter', () => {
  function clock(start = 1_000_000) {
    let now = start;
    return {
      now: () => now,
      advance(ms: number) {
        now += ms;
      },
    };
  }

  it('allows the configured number of requests per minute, then says how many seconds to wait', () => {
    const time = clock();
    const limiter = new RateLimiter(3, time.now);
    expect([limiter.take('u'), limiter.take('u'), limiter.take('u')]).toEqual([0, 0, 0]);
    expect(limiter.take('u')).toBe(60);
    time.advance(20_500);
    expect(limiter.take('u')).toBe(40);
  });

  it('slides the window: each request frees its slot a minute after it was made', () => {
    const time = clock();
    const limiter = new RateLimiter(3, time.now);
    limiter.take('u'); // t = 0
    time.advance(20_000);
    limiter.take('u'); // t = 20 s
    time.advance(20_000);
    limiter.take('u'); // t = 40 s
    time.advance(10_000); // t = 50 s
    expect(limiter.take('u')).toBe(10);
    time.advance(9_999); // just before the first request is a minute old
    expect(limiter.take('u')).toBe(1);
    time.advance(1); // t = 60 s: the first slot is free again, and only that one
    expect(limiter.take('u')).toBe(0);
    expect(limiter.take('u')).toBe(20);
    time.advance(20_000); // t = 80 s: the second one frees
    expect(limiter.take('u')).toBe(0);
  });

  it('does not count refused requests', () => {
    const time = clock();
    const limiter = new RateLimiter(1, time.now);
    expect(limiter.take('u')).toBe(0);
    for (let i = 0; i < 5; i++) {
      time.advance(10_000);
      expect(limiter.take('u')).toBeGreaterThan(0);
    }
    time.advance(10_000); // a minute after the only counted request
    expect(limiter.take('u')).toBe(0);
  });

  it('keeps a separate window per key', () => {
    const time = clock();
    const limiter = new RateLimiter(2, time.now);
    expect([limiter.take('a'), limiter.take('a')]).toEqual([0, 0]);
    expect(limiter.take('a')).toBeGreaterThan(0);
    expect([limiter.take('b'), limiter.take('b')]).toEqual([0, 0]);
    expect(limiter.take('b')).toBeGreaterThan(0);
  });

  it('never asks to wait less than a second or more than a minute', () => {
    const time = clock();
    const limiter = new RateLimiter(1, time.now);
    limiter.take('u');
    for (const step of [0, 1, 29_999, 29_998, 1]) {
      time.advance(step);
      const wait = limiter.take('u');
      expect(wait).toBeGreaterThanOrEqual(1);
      expect(wait).toBeLessThanOrEqual(60);
    }
  });
});
