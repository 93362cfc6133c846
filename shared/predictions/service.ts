/**
 * Synchronous predictions: validate the inputs against the model's signature, run the model, then
 * charge `price × rows` in the one transaction that also records the prediction and checks that the
 * cached model version is still active at the cached price. A failed run is recorded and costs
 * nothing; a short balance answers 402 and throws the outputs away.
 */
import { ulid } from 'ulid';
import { fingerprint } from '../auth/secrets.ts';
import { utcDay } from '../domain/credits.ts';
import { predictionCursor } from '../domain/cursors.ts';
import {
  ConflictError,
  IdempotencyConflictError,
  IdempotencyKeyReusedError,
  InsufficientCreditsError,
  ModelError,
  ModelPriceChangedError,
  NotFoundError,
  PredictionAlreadyRefundedError,
  RateLimitedError,
  SpendCapReachedError,
} from '../domain/errors.ts';
import {
  ChangeAlreadySettledError,
  expiryOf,
  type IdempotencyRecord,
  replayOrConflict,
} from '../domain/idempotency.ts';
import type { Model } from '../domain/models.ts';
import {
  afterPriceChange,
  type Prediction,
  type PredictionResponse,
  RateLimiter,
} from '../domain/predictions.ts';
import { assertInputNesting, outputsToJson, parseInputs } from '../domain/tensors.ts';
import type { Principal } from '../domain/users.ts';
import type { ModelRuntime } from '../models/ports.ts';
import type {
  ChargePort,
  FollowUps,
  IdempotencyPort,
  PredictionStore,
  TransactionPort,
  UsagePort,
} from './ports.ts';

export interface PredictionSettings {
  maxRows: number;
  timeoutMs: number;
  retentionSeconds: number;
  /** Outputs larger than this (as JSON) are returned but not kept on the record. */
  inlineOutputBytes: number;
  ratePerMinute: number;
  /** How long a model name keeps resolving to the version this container found. */
  nameCacheSeconds: number;
  idempotencyTtlSeconds: number;
}

export interface ModelLookup {
  findActive(reference: string): Promise<Model | undefined>;
}

export class PredictionService {
  private readonly limiter: RateLimiter;
  private readonly modelCache = new Map<string, { model: Model; until: number }>();
  private readonly lookups = new Map<string, Promise<Model | undefined>>();

  constructor(
    private readonly models: ModelLookup,
    private readonly runtime: ModelRuntime,
    private readonly credits: ChargePort,
    private readonly idempotency: IdempotencyPort,
    private readonly predictions: PredictionStore,
    private readonly usage: UsagePort,
    private readonly transactions: TransactionPort,
    private readonly followUps: FollowUps,
    private readonly settings: PredictionSettings,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.limiter = new RateLimiter(settings.ratePerMinute);
  }

  /** The model version a reference names, from this container's cache when it can. */
  private async resolve(reference: string): Promise<Model> {
    const model = await this.lookup(reference, false);
    if (!model) throw new NotFoundError(`There is no active model "${reference}".`);
    return model;
  }

  /** The active version a reference names (read again when `fresh`); undefined when there is none. */
  private async lookup(reference: string, fresh: boolean): Promise<Model | undefined> {
    const cached = this.modelCache.get(reference);
    if (!fresh && cached && cached.until > Date.now()) return cached.model;
    // Concurrent requests for the same reference share one lookup.
    let lookup = fresh ? undefined : this.lookups.get(reference);
    if (!lookup) {
      lookup = this.models.findActive(reference).finally(() => this.lookups.delete(reference));
      this.lookups.set(reference, lookup);
    }
    const model = await lookup;
    if (!model) {
      this.modelCache.delete(reference);
      return undefined;
    }
    // A version id always names the same version (its price and status are held by the charge's
    // condition); a name may move to a newer version, so it is looked up again now and then.
    const until =
      model.id === reference ? Number.POSITIVE_INFINITY : Date.now() + this.settings.nameCacheSeconds * 1000;
    this.modelCache.set(reference, { model, until });
    return model;
  }

  async predict(
    principal: Principal,
    reference: string,
    body: { inputs: unknown },
    idempotencyKey: string | undefined,
  ): Promise<PredictionResponse> {
    const wait = this.limiter.take(principal.userId);
    if (wait > 0) throw new RateLimitedError('Too many predictions; slow down.', wait);

    // The request's fingerprint only matters under an Idempotency-Key (the same key with another
    // body is a 409); without one, the prediction's own id makes the charge unique.
    const idempotencyId = idempotencyKey ? `prediction#${idempotencyKey}` : undefined;
    let requestHash = 'unkeyed';
    if (idempotencyId) {
      // Before anything recursive (the fingerprint's JSON.stringify) walks the inputs.
      assertInputNesting(body.inputs);
      requestHash = fingerprint({ reference, inputs: body.inputs });
      const previous = await this.idempotency.get(principal.userId, idempotencyId);
      if (previous) return this.replay(previous, requestHash);
    }

    let model = await this.resolve(reference);
    const { tensors, rows } = parseInputs(body.inputs, model.inputs, this.settings.maxRows);
    let cost = model.price * rows;
    await this.refuseEarlyIfBroke(principal.userId, cost);

    const predictionId = ulid();
    const started = performance.now();
    let outputs: Record<string, unknown>;
    try {
      const runner = await this.runtime.runner(model);
      outputs = outputsToJson(await withTimeout(runner.run(tensors), this.settings.timeoutMs));
    } catch (error) {
      const message =
        error instanceof TimeoutError
          ? `The model did not finish within ${this.settings.timeoutMs} ms.`
          : `The model failed on these inputs: ${(error as Error).message}`;
      const failed: Prediction = {
        id: predictionId,
        userId: principal.userId,
        modelId: model.id,
        modelName: model.name,
        modelVersion: model.version,
        status: 'failed',
        rows,
        cost: 0,
        error: { code: 'model_error', message },
        latencyMs: Math.round(performance.now() - started),
        createdAt: this.now().toISOString(),
      };
      await this.transactions.write([
        this.predictions.recordPart(failed, this.settings.retentionSeconds),
        ...this.usage.usageParts({
          userId: principal.userId,
          modelId: model.id,
          day: utcDay(new Date(failed.createdAt)),
          predictions: 0,
          failed: rows,
          credits: 0,
        }),
      ]);
      throw new ModelError(`${message} Nothing was charged.`, { details: { predictionId } });
    }
    const latencyMs = Math.round(performance.now() - started);

    // The model's price or status may change between the lookup and the charge; the charge's
    // condition catches that, and we charge again at the price that now holds (or 404).
    for (let attempts = 1; ; attempts++) {
      try {
        return await this.charge(principal, model, {
          predictionId,
          rows,
          cost,
          outputs,
          latencyMs,
          requestHash,
          idempotencyId,
        });
      } catch (error) {
        if (!(error instanceof ModelPriceChangedError)) throw error;
        const next = afterPriceChange(attempts, await this.lookup(model.id, true), rows);
        if (next.next === 'give-up') throw error;
        if (next.next === 'not-found') throw new NotFoundError(`There is no active model "${model.id}".`);
        model = next.model;
        cost = next.cost;
      }
    }
  }

  private async refuseEarlyIfBroke(userId: string, cost: number): Promise<void> {
    // Without this, an empty balance could keep the model busy for free: check the balance this
    // container last saw (no read), and only if it looks short or was never seen here, read it to
    // be sure. (A failed run learns nothing about the balance, so an unseen balance must be read,
    // or a user without credits could run a failing model again and again.)
    const known = this.credits.knownBalance(userId);
    if (cost === 0 || (known !== undefined && known >= cost)) return;
    const account = await this.credits.getAccount(userId);
    const balance = account?.balance ?? 0;
    if (balance < cost) throw new InsufficientCreditsError(balance, cost);
  }

  private async charge(
    principal: Principal,
    model: Model,
    run: {
      predictionId: string;
      rows: number;
      cost: number;
      outputs: Record<string, unknown>;
      latencyMs: number;
      requestHash: string;
      idempotencyId: string | undefined;
    },
  ): Promise<PredictionResponse> {
    const createdAt = this.now().toISOString();
    const keepOutputs = JSON.stringify(run.outputs).length <= this.settings.inlineOutputBytes;
    const prediction: Prediction = {
      id: run.predictionId,
      userId: principal.userId,
      modelId: model.id,
      modelName: model.name,
      modelVersion: model.version,
      status: 'succeeded',
      rows: run.rows,
      cost: run.cost,
      ...(keepOutputs ? { outputs: run.outputs } : {}),
      latencyMs: run.latencyMs,
      createdAt,
    };
    const response = (balance: number): PredictionResponse => ({
      id: run.predictionId,
      modelId: model.id,
      modelVersion: model.version,
      outputs: run.outputs,
      rows: run.rows,
      cost: run.cost,
      balance,
      createdAt,
    });
    const parts = [
      this.predictions.recordPart(prediction, this.settings.retentionSeconds),
      this.predictions.priceCheckPart(model.id, model.price),
      ...this.usage.usageParts({
        userId: principal.userId,
        modelId: model.id,
        day: utcDay(new Date(createdAt)),
        predictions: run.rows,
        failed: 0,
        credits: run.cost,
        latencyMs: run.latencyMs,
      }),
    ];
    if (run.cost === 0) {
      // A free model changes no balance; it still records the prediction under the same
      // condition, and remembers the response under the Idempotency-Key like a charge does.
      const balance = (await this.credits.getAccount(principal.userId))?.balance ?? 0;
      const remember = run.idempotencyId
        ? [
            this.idempotency.part(principal.userId, {
              kind: 'prediction',
              idempotencyId: run.idempotencyId,
              requestHash: run.requestHash,
              expiresAt: expiryOf(this.now(), this.settings.idempotencyTtlSeconds),
              entry: null,
              balance,
              response: response(balance),
            }),
          ]
        : [];
      try {
        await this.transactions.write([...parts, ...remember]);
      } catch (error) {
        // A retry with the same key (or a concurrent request) settled it first: answer what it got.
        if (error instanceof ChangeAlreadySettledError && run.idempotencyId) {
          const previous = error.record ?? (await this.idempotency.get(principal.userId, run.idempotencyId));
          if (previous) return this.replay(previous, run.requestHash);
        }
        throw error;
      }
      return response(balance);
    }
    const result = await this.credits
      .apply(
        {
          userId: principal.userId,
          kind: 'charge',
          amount: -run.cost,
          idempotencyId: run.idempotencyId ?? `prediction#${run.predictionId}`,
          requestHash: run.requestHash,
          predictionId: run.predictionId,
          modelId: model.id,
        },
        {
          with: parts,
          idempotencyTtlSeconds: this.settings.idempotencyTtlSeconds,
          // Under an Idempotency-Key the response is kept to answer a retry with (when small enough).
          outcome: { kind: 'prediction', response: run.idempotencyId && keepOutputs ? response(0) : null },
        },
      )
      .catch(keyReused(run.idempotencyId));
    if (result.outcome === 'insufficient-credits') {
      throw new InsufficientCreditsError(result.balance, result.cost);
    }
    if (result.outcome === 'spend-cap-reached') {
      throw new SpendCapReachedError(result.cap, result.spentToday, result.cost);
    }
    if (result.replayed && result.record) return this.replay(result.record, run.requestHash);
    if (result.lowBalance?.deliver)
      await this.followUps.notifyLowBalance(principal.userId, result.lowBalance.notificationId);
    return response(result.balance);
  }

  /** The response an Idempotency-Key settled before; another request under the key is a 409. */
  private replay(record: IdempotencyRecord, requestHash: string): PredictionResponse {
    try {
      return replayOrConflict(record, { requestHash, wants: 'prediction' });
    } catch (error) {
      throw keyReusedError(error);
    }
  }

  async get(principal: Principal, predictionId: string): Promise<Prediction> {
    const prediction = await this.predictions.get(principal.userId, predictionId);
    if (!prediction) throw new NotFoundError('There is no such prediction.');
    return prediction;
  }

  async list(
    principal: Principal,
    query: { limit: number; cursor?: string | undefined; modelId?: string | undefined },
  ) {
    const before = query.cursor ? predictionCursor.decode(query.cursor) : undefined;
    const page = await this.predictions.list(principal.userId, {
      limit: query.limit,
      before,
      model: query.modelId,
    });
    return { items: page.items, nextCursor: page.last ? predictionCursor.encode(page.last) : null };
  }

  /** The caller's whole history (capped), newest first, for a CSV export. */
  async exportAll(principal: Principal, modelId: string | undefined, cap = 10_000): Promise<Prediction[]> {
    const all: Prediction[] = [];
    let before: string | undefined;
    do {
      const page = await this.predictions.list(principal.userId, { limit: 100, before, model: modelId });
      all.push(...page.items);
      before = page.last ?? undefined;
    } while (before && all.length < cap);
    return all.slice(0, cap);
  }

  /** Gives a prediction's cost back, once, as a `refund` ledger entry. */
  async refund(admin: Principal, predictionId: string, reason: string) {
    const prediction = await this.predictions.findById(predictionId);
    if (!prediction) throw new NotFoundError('There is no such prediction.');
    if (prediction.status !== 'succeeded' || prediction.cost <= 0) {
      throw new ConflictError('Only a prediction that was charged can be refunded.');
    }
    if (prediction.refundedAt) throw new PredictionAlreadyRefundedError();
    const result = await this.credits.apply(
      {
        userId: prediction.userId,
        kind: 'refund',
        amount: prediction.cost,
        idempotencyId: `refund#${prediction.id}`,
        requestHash: fingerprint({ refund: prediction.id }),
        predictionId: prediction.id,
        reason,
        actorId: admin.userId,
      },
      {
        // Marking the prediction refunded fails (PredictionAlreadyRefundedError) once it is.
        with: [
          this.predictions.refundPart(prediction, this.now().toISOString()),
          this.followUps.audit.part(
            this.followUps.audit.entry({
              actorId: admin.userId,
              action: 'prediction.refund',
              target: { type: 'prediction', id: prediction.id },
              details: { userId: prediction.userId, amount: prediction.cost, reason },
            }),
          ),
        ],
      },
    );
    if (result.outcome !== 'applied' || result.replayed) throw new PredictionAlreadyRefundedError();
    return result;
  }
}

/**
 * The store's conflict on a charge under an Idempotency-Key: a concurrent request with the same key
 * but another body got there first.
 */
function keyReused(idempotencyId: string | undefined) {
  return (error: unknown): never => {
    throw idempotencyId ? keyReusedError(error) : error;
  };
}

/** An Idempotency-Key settled by another request is `idempotency-key-reused` to the client. */
function keyReusedError(error: unknown): unknown {
  const reused = error instanceof IdempotencyConflictError && error.reason !== 'response-not-kept';
  return reused ? new IdempotencyKeyReusedError() : error;
}

class TimeoutError extends Error {}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError()), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
