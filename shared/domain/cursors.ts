/**
 * The list endpoints' cursors, one codec: a position in a list (an id, a sort key, a sequence
 * number) travels as base64url text the client hands back unchanged; anything else is refused as a
 * validation error on `query.cursor` before a query runs. Each list's codec says what a position
 * of its own looks like.
 */
import { ValidationError } from './errors.ts';

export interface CursorCodec<Position> {
  encode(position: Position): string;
  /** The position a cursor this API issued names; a ValidationError for anything else. */
  decode(cursor: string): Position;
}

function invalidCursor(): ValidationError {
  return new ValidationError('The cursor is not valid; use the nextCursor of a previous page.', [
    { path: 'query.cursor', message: 'is not a cursor this API issued' },
  ]);
}

/** A cursor over a position written as text; `read` answers undefined for text that is not one. */
export function cursorCodec<Position>(
  write: (position: Position) => string,
  read: (text: string) => Position | undefined,
): CursorCodec<Position> {
  return {
    encode: (position) => Buffer.from(write(position)).toString('base64url'),
    decode: (cursor) => {
      const position = read(Buffer.from(cursor, 'base64url').toString('utf8'));
      if (position === undefined) throw invalidCursor();
      return position;
    },
  };
}

/** A cursor whose position is a text of a known shape (a sort key, an id). */
export function textCursor(shape: RegExp): CursorCodec<string> {
  return cursorCodec(
    (position: string) => position,
    (text) => (shape.test(text) ? text : undefined),
  );
}

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Predictions: the id (a ULID) of the last prediction of a page. */
export const predictionCursor = textCursor(ULID);

/** The audit trail: the id (a ULID) of the last entry of a page. */
export const auditCursor = textCursor(ULID);

/** Batches: the id of the last batch of a page. */
export const batchCursor = textCursor(/^[0-9A-Za-z_]{10,64}$/);

/** Models: `{name}#{version, 6 digits}|{model id}` of the last version of a page. */
export const modelCursor = textCursor(/^[a-z0-9-]+#\d{6}\|mdl_[A-Za-z0-9]+$/);

/** The ledger: the sequence number before which the next page starts, as `{"before": n}`. */
export const ledgerCursor = cursorCodec(
  (before: number) => JSON.stringify({ before }),
  (text) => {
    try {
      const parsed = JSON.parse(text) as { before?: unknown };
      return typeof parsed?.before === 'number' && Number.isSafeInteger(parsed.before) && parsed.before > 0
        ? parsed.before
        : undefined;
    } catch {
      return undefined;
    }
  },
);
