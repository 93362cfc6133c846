/**
 * The model registry over HTTP: publishing a version through its presigned upload, the validator's
 * verdicts (active, corrupt, ZipMap, too large), who sees what, admin-only changes, and repricing,
 * retiring and reactivating taking effect on the very next prediction even with the model cached.
 */
import { createHash, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Api, type SignedInUser, signIn, signUp } from '../support/api.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { awaitValidation, createModel, modelFile, publishModel, putUpload } from '../support/models.ts';
import { errorPaths, expectProblem } from '../support/problems.ts';
import { useReconciler } from '../support/reconcile.ts';

const MAX_MODEL_BYTES = 2048;

const local = useLocalStack({
  environment: {
    // A name resolves to its newest active version at once (no per-container name cache).
    MODEL_NAME_CACHE_SECONDS: '0',
    MAX_MODEL_BYTES: String(MAX_MODEL_BYTES),
  },
});
const ledger = useReconciler(local);

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];

let admin: SignedInUser;
let user: SignedInUser;
let irisBytes: Uint8Array;

beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
  user = await signUp(local.url, 'models');
  irisBytes = await modelFile('iris/model.onnx');
});

/** Query parameters of a presigned URL that carry a checksum or ask for one. */
function checksumParameters(url: string): string[] {
  return [...new URL(url).searchParams.keys()].filter((name) =>
    /^x-amz-(checksum-|sdk-checksum-algorithm$)/i.test(name),
  );
}

function signedHeaders(url: string): string[] {
  return new URL(url).searchParams.get('X-Amz-SignedHeaders')?.split(';') ?? [];
}

function uniqueName(label: string): string {
  return `${label}-${randomBytes(3).toString('hex')}`;
}

async function balanceOf(api: Api): Promise<number> {
  const account = await api.get('/v1/account');
  expect(account.status).toBe(200);
  return account.body.balance;
}

/** Every model the caller can list, walking the pages. */
async function listAll(api: Api): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const response = await api.get(`/v1/models?limit=3${query}`);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.body.items.length).toBeLessThanOrEqual(3);
    items.push(...response.body.items);
    cursor = response.body.nextCursor;
    if (!cursor) return items;
  }
  throw new Error('the model list did not end');
}

describe('publishing a model version', () => {
  let name: string;
  let first: any;

  it('answers POST /v1/models with a pending version and a presigned PUT upload', async () => {
    name = uniqueName('iris-copy');
    const response = await admin.api.post('/v1/models', { name, description: 'A copy of iris', price: 2 });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    const { model, upload } = response.body;
    expect(model).toMatchObject({
      name,
      version: 1,
      description: 'A copy of iris',
      price: 2,
      status: 'pending_upload',
      inputs: [],
      outputs: [],
    });
    expect(model.id).toMatch(/^mdl_/);
    expect(model.createdAt).toMatch(ISO);
    expect(response.headers.get('location')).toBe(`/v1/models/${model.id}`);
    expect(upload).toMatchObject({ method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' } });
    expect(new URL(upload.url).protocol).toMatch(/^https?:$/);
    // Nothing was declared: the URL carries no checksum (an S3 that checks one would refuse the file).
    expect(checksumParameters(upload.url)).toEqual([]);
    expect(signedHeaders(upload.url)).toEqual(['host']);
    // Until its file is validated, nobody can predict with it.
    const early = await user.api.post(`/v1/models/${model.id}/predictions`, { inputs: { input: IRIS_ROW } });
    expectProblem(early, 404, 'not-found');

    await putUpload(upload, irisBytes);
    first = await awaitValidation(admin.api, model.id);
  });

  it('makes a good file active with its signature, size and SHA-256', () => {
    expect(first).toMatchObject({
      name,
      version: 1,
      price: 2,
      status: 'active',
      sizeBytes: irisBytes.byteLength,
      sha256: createHash('sha256').update(irisBytes).digest('hex'),
    });
    expect(first.statusReason).toBeUndefined();
    expect(first.inputs).toEqual([{ name: 'input', type: 'float32', shape: [null, 4] }]);
    expect(first.outputs).toEqual([
      { name: 'label', type: 'int64', shape: [null] },
      { name: 'probabilities', type: 'float32', shape: [null, 3] },
    ]);
  });

  it('predicts with the new version by id and by name, at its price', async () => {
    const before = await balanceOf(user.api);
    const byId = await user.api.post(`/v1/models/${first.id}/predictions`, { inputs: { input: IRIS_ROW } });
    expect(byId.status, JSON.stringify(byId.body)).toBe(201);
    expect(byId.body).toMatchObject({
      modelId: first.id,
      modelVersion: 1,
      rows: 1,
      cost: 2,
      balance: before - 2,
    });
    expect(byId.body.outputs.label).toEqual([0]);
    const byName = await user.api.post(`/v1/models/${name}/predictions`, {
      inputs: { input: [IRIS_ROW, IRIS_ROW] },
    });
    expect(byName.status).toBe(201);
    expect(byName.body).toMatchObject({
      modelId: first.id,
      modelVersion: 1,
      rows: 2,
      cost: 4,
      balance: before - 6,
    });
    // The copy answers exactly as the bundled iris does.
    const bundled = await user.api.post('/v1/models/iris/predictions', { inputs: { input: IRIS_ROW } });
    expect(bundled.status).toBe(201);
    expect(byId.body.outputs).toEqual(bundled.body.outputs);
    const got = await user.api.get(`/v1/models/${name}`);
    expect(got.status).toBe(200);
    expect(got.body.id).toBe(first.id);
  });

  it('makes version 2 with a second POST of the same name; the name then means the newest active version', async () => {
    const { model: pending, upload } = await createModel(admin.api, { name, price: 5 });
    expect(pending).toMatchObject({ name, version: 2, status: 'pending_upload' });
    expect(pending.id).not.toBe(first.id);
    // While version 2 awaits its file, the name still means version 1.
    const meanwhile = await user.api.post(`/v1/models/${name}/predictions`, { inputs: { input: IRIS_ROW } });
    expect(meanwhile.status).toBe(201);
    expect(meanwhile.body).toMatchObject({ modelId: first.id, modelVersion: 1, cost: 2 });

    await putUpload(upload, irisBytes);
    const second = await awaitValidation(admin.api, pending.id);
    expect(second).toMatchObject({ status: 'active', version: 2, price: 5 });

    const byName = await user.api.post(`/v1/models/${name}/predictions`, { inputs: { input: IRIS_ROW } });
    expect(byName.status).toBe(201);
    expect(byName.body).toMatchObject({ modelId: second.id, modelVersion: 2, cost: 5 });
    expect((await user.api.get(`/v1/models/${name}`)).body).toMatchObject({ id: second.id, version: 2 });
    // Version 1 is still there by its id, at its own price.
    const old = await user.api.post(`/v1/models/${first.id}/predictions`, { inputs: { input: IRIS_ROW } });
    expect(old.body).toMatchObject({ modelId: first.id, modelVersion: 1, cost: 2 });
    // Retiring version 2 makes the name fall back to version 1.
    const retired = await admin.api.patch(`/v1/models/${second.id}`, { status: 'retired' });
    expect(retired.status).toBe(200);
    const fallback = await user.api.post(`/v1/models/${name}/predictions`, { inputs: { input: IRIS_ROW } });
    expect(fallback.body).toMatchObject({ modelId: first.id, modelVersion: 1, cost: 2 });
    await ledger.expectReconciled(user.id);
  });
});

describe('publishing with a declared size and SHA-256', () => {
  it('signs them into the upload as headers, hands them back to send, and the version becomes active', async () => {
    const name = uniqueName('declared');
    const checksumSha256 = createHash('sha256').update(irisBytes).digest('base64');
    const response = await admin.api.post('/v1/models', {
      name,
      description: '',
      price: 1,
      size: irisBytes.byteLength,
      checksumSha256,
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    const { model, upload } = response.body;
    expect(signedHeaders(upload.url)).toEqual(
      expect.arrayContaining(['content-length', 'host', 'x-amz-checksum-sha256']),
    );
    expect(checksumParameters(upload.url)).toEqual([]);
    expect(upload.headers).toEqual({
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(irisBytes.byteLength),
      'x-amz-checksum-sha256': checksumSha256,
    });

    await putUpload(upload, irisBytes);
    const validated = await awaitValidation(admin.api, model.id);
    expect(validated).toMatchObject({
      status: 'active',
      sizeBytes: irisBytes.byteLength,
      sha256: Buffer.from(checksumSha256, 'base64').toString('hex'),
    });
    const prediction = await user.api.post(`/v1/models/${model.id}/predictions`, {
      inputs: { input: IRIS_ROW },
    });
    expect(prediction.status, JSON.stringify(prediction.body)).toBe(201);
  });

  it(`refuses a declared size over MAX_MODEL_BYTES (${MAX_MODEL_BYTES}) with 413 naming size and the limit; no version is made`, async () => {
    const name = uniqueName('declared-big');
    const response = await admin.api.post('/v1/models', {
      name,
      description: '',
      price: 1,
      size: MAX_MODEL_BYTES + 1,
    });
    const problem = expectProblem(response, 413, 'payload-too-large');
    expect(errorPaths(problem)).toEqual(['/size']);
    expect(problem.limit).toBe(MAX_MODEL_BYTES);
    expect(problem.detail).toContain(String(MAX_MODEL_BYTES));
    expect((await listAll(admin.api)).map((m) => m.name)).not.toContain(name);
    // Not even a version number was taken: the first version made afterwards is version 1.
    const { model } = await createModel(admin.api, { name, price: 1 });
    expect(model.version).toBe(1);
  });

  it('refuses a malformed checksum or size with 400 naming the field; no version is made', async () => {
    const name = uniqueName('declared-bad');
    const hex = createHash('sha256').update(irisBytes).digest('hex');
    const digest = createHash('sha256').update(irisBytes).digest('base64');
    const cases: [Record<string, unknown>, string][] = [
      [{ checksumSha256: hex }, '/checksumSha256'],
      [{ checksumSha256: digest.slice(0, 40) }, '/checksumSha256'],
      [{ checksumSha256: `${digest.slice(0, 42)}B=` }, '/checksumSha256'],
      [{ checksumSha256: createHash('md5').update(irisBytes).digest('base64') }, '/checksumSha256'],
      [{ size: 0 }, '/size'],
      [{ size: 1.5 }, '/size'],
    ];
    for (const [extra, path] of cases) {
      const response = await admin.api.post('/v1/models', { name, description: '', price: 1, ...extra });
      const problem = expectProblem(response, 400, 'validation-failed');
      expect(errorPaths(problem), JSON.stringify(extra)).toEqual([path]);
    }
    expect((await listAll(admin.api)).map((m) => m.name)).not.toContain(name);
  });
});

describe('a validated version is immutable', () => {
  it('never serves bytes put to the upload URL after validation (the version keeps its SHA-256)', async () => {
    const name = uniqueName('tamper');
    const { model: pending, upload } = await createModel(admin.api, { name, price: 1 });
    await putUpload(upload, irisBytes);
    const validated = await awaitValidation(admin.api, pending.id);
    expect(validated.status).toBe('active');

    // The same presigned URL, used again: a valid model whose bytes differ (its producer name).
    const tampered = Uint8Array.from(irisBytes);
    const at = Buffer.from(tampered).indexOf('train.py');
    expect(at).toBeGreaterThan(0);
    tampered.set(Buffer.from('train.PY'), at);
    expect(createHash('sha256').update(tampered).digest('hex')).not.toBe(validated.sha256);
    await putUpload(upload, tampered);

    const before = await balanceOf(user.api);
    const response = await user.api.post(`/v1/models/${validated.id}/predictions`, {
      inputs: { input: IRIS_ROW },
    });
    expectProblem(response, 422, 'model-error');
    expect(await balanceOf(user.api)).toBe(before);
    const after = await admin.api.get(`/v1/models/${validated.id}`);
    expect(after.body).toMatchObject({ status: 'active', sha256: validated.sha256 });
  });
});

describe('the validator refuses files it cannot serve', () => {
  it('marks a corrupt file invalid with a reason', async () => {
    const bytes = await modelFile('fixtures/corrupt.onnx');
    const { model } = await publishModel(admin.api, { name: uniqueName('corrupt'), price: 1 }, bytes);
    expect(model.status).toBe('invalid');
    expect(model.statusReason).toMatch(/not an ONNX model/i);
    expect(model.inputs).toEqual([]);
    const prediction = await user.api.post(`/v1/models/${model.id}/predictions`, {
      inputs: { input: IRIS_ROW },
    });
    expectProblem(prediction, 404, 'not-found');
  });

  it('marks a model with a ZipMap (non-tensor) output invalid, saying so', async () => {
    const bytes = await modelFile('fixtures/iris-zipmap.onnx');
    const { model } = await publishModel(admin.api, { name: uniqueName('zipmap'), price: 1 }, bytes);
    expect(model.status).toBe('invalid');
    expect(model.statusReason).toContain('ZipMap');
    expect(model.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('marks a file over MAX_MODEL_BYTES invalid, naming the size and the limit', async () => {
    const bytes = await modelFile('digits/model.onnx');
    expect(bytes.byteLength).toBeGreaterThan(MAX_MODEL_BYTES);
    const { model } = await publishModel(admin.api, { name: uniqueName('too-big'), price: 1 }, bytes);
    expect(model.status).toBe('invalid');
    expect(model.statusReason).toContain(String(bytes.byteLength));
    expect(model.statusReason).toContain(String(MAX_MODEL_BYTES));
    expect(model.sizeBytes).toBe(bytes.byteLength);
  });
});

describe('who sees and changes models', () => {
  let invalidId: string;
  let activeId: string;

  beforeAll(async () => {
    const invalid = await publishModel(
      admin.api,
      { name: uniqueName('hidden'), price: 1 },
      await modelFile('fixtures/corrupt.onnx'),
    );
    invalidId = invalid.model.id;
    const active = await publishModel(admin.api, { name: uniqueName('visible'), price: 1 }, irisBytes);
    activeId = active.model.id;
  });

  it('lists only active models to users, and every version to admins', async () => {
    const forUser = await listAll(user.api);
    expect(forUser.length).toBeGreaterThanOrEqual(5);
    expect(forUser.every((m) => m.status === 'active')).toBe(true);
    const userIds = forUser.map((m) => m.id);
    expect(new Set(userIds).size).toBe(userIds.length);
    expect(userIds).toContain(activeId);
    expect(userIds).not.toContain(invalidId);
    expect(forUser.map((m) => m.name)).toEqual(
      expect.arrayContaining(['iris', 'breast-cancer', 'diabetes', 'digits']),
    );

    const forAdmin = await listAll(admin.api);
    const adminIds = forAdmin.map((m) => m.id);
    expect(new Set(adminIds).size).toBe(adminIds.length);
    expect(adminIds).toEqual(expect.arrayContaining([...userIds, invalidId]));
    expect(forAdmin.some((m) => m.status === 'invalid')).toBe(true);
    expect(forAdmin.some((m) => m.status === 'retired')).toBe(true);
    expect(forAdmin.length).toBeGreaterThan(forUser.length);
  });

  it('shows an invalid version to admins only', async () => {
    expectProblem(await user.api.get(`/v1/models/${invalidId}`), 404, 'not-found');
    const seen = await admin.api.get(`/v1/models/${invalidId}`);
    expect(seen.status).toBe(200);
    expect(seen.body.status).toBe('invalid');
  });

  it('refuses POST and PATCH by a user with 403', async () => {
    const created = await user.api.post('/v1/models', {
      name: uniqueName('mine'),
      description: '',
      price: 1,
    });
    expectProblem(created, 403, 'forbidden');
    const patched = await user.api.patch(`/v1/models/${activeId}`, { price: 0 });
    expectProblem(patched, 403, 'forbidden');
    expect((await user.api.get(`/v1/models/${activeId}`)).body.price).toBe(1);
  });

  it('refuses bad create bodies with 400 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ name: 'Bad Name!', description: '', price: 1 }, '/name'],
      [{ name: '-dash-first', description: '', price: 1 }, '/name'],
      [{ name: 'x'.repeat(65), description: '', price: 1 }, '/name'],
      [{ name: uniqueName('neg'), description: '', price: -1 }, '/price'],
      [{ name: uniqueName('frac'), description: '', price: 1.5 }, '/price'],
      [{ name: uniqueName('str'), description: '', price: '1' }, '/price'],
      [{ name: uniqueName('none'), description: '' }, '/price'],
      [{ name: uniqueName('extra'), description: '', price: 1, owner: 'me' }, '/owner'],
    ];
    for (const [body, path] of cases) {
      const response = await admin.api.post('/v1/models', body);
      const problem = expectProblem(response, 400, 'validation-failed');
      expect(errorPaths(problem), JSON.stringify(body)).toContain(path);
    }
  });

  it('refuses bad PATCH bodies with 400 and an unknown model with 404', async () => {
    for (const [body, path] of [
      [{ price: -3 }, '/price'],
      [{ price: 0.5 }, '/price'],
      [{ status: 'invalid' }, '/status'],
      [{ status: 'active', sha256: 'x' }, '/sha256'],
    ] as const) {
      const problem = expectProblem(
        await admin.api.patch(`/v1/models/${activeId}`, body),
        400,
        'validation-failed',
      );
      expect(errorPaths(problem)).toContain(path);
    }
    expectProblem(await admin.api.patch(`/v1/models/${activeId}`, {}), 400, 'validation-failed');
    expectProblem(await admin.api.patch('/v1/models/mdl_NOSUCHMODEL', { price: 1 }), 404, 'not-found');
    expectProblem(await admin.api.patch('/v1/models/no-such-model', { price: 1 }), 404, 'not-found');
  });

  it('refuses to activate an invalid version (409)', async () => {
    expectProblem(await admin.api.patch(`/v1/models/${invalidId}`, { status: 'active' }), 409, 'conflict');
    expect((await admin.api.get(`/v1/models/${invalidId}`)).body.status).toBe('invalid');
  });
});

describe('repricing, retiring and reactivating take effect on the next prediction', () => {
  let model: any;
  let name: string;

  beforeAll(async () => {
    name = uniqueName('pricing');
    model = (await publishModel(admin.api, { name, price: 1 }, irisBytes)).model;
    expect(model.status).toBe('active');
  });

  const predict = (reference: string) =>
    user.api.post(`/v1/models/${reference}/predictions`, { inputs: { input: IRIS_ROW } });

  it('charges the new price on the very next prediction after a reprice, though the model is cached', async () => {
    // Warm this container's caches (model metadata by id, and the loaded session).
    const warm = await predict(model.id);
    expect(warm.body).toMatchObject({ cost: 1 });

    const repriced = await admin.api.patch(`/v1/models/${model.id}`, { price: 4, description: 'now dearer' });
    expect(repriced.status).toBe(200);
    expect(repriced.body).toMatchObject({
      id: model.id,
      price: 4,
      description: 'now dearer',
      status: 'active',
    });

    const before = await balanceOf(user.api);
    const next = await predict(model.id);
    expect(next.status, JSON.stringify(next.body)).toBe(201);
    expect(next.body).toMatchObject({ modelId: model.id, cost: 4, balance: before - 4 });
    const byName = await predict(name);
    expect(byName.body).toMatchObject({ modelId: model.id, cost: 4, balance: before - 8 });
    expect(await balanceOf(user.api)).toBe(before - 8);

    // Cheaper again, and free: a price of 0 charges nothing and writes no ledger entry.
    expect((await admin.api.patch(`/v1/models/${model.id}`, { price: 0 })).status).toBe(200);
    const entriesBefore = (await ledger.read(user.id)).entries.length;
    const free = await predict(model.id);
    expect(free.status, JSON.stringify(free.body)).toBe(201);
    expect(free.body).toMatchObject({ cost: 0, balance: before - 8 });
    expect((await ledger.read(user.id)).entries.length).toBe(entriesBefore);
    // A free model is held to its status and price too: retired, it answers 404 though cached...
    expect((await admin.api.patch(`/v1/models/${model.id}`, { status: 'retired' })).status).toBe(200);
    expectProblem(await predict(model.id), 404, 'not-found');
    expect((await admin.api.patch(`/v1/models/${model.id}`, { status: 'active' })).status).toBe(200);
    expect((await predict(model.id)).body).toMatchObject({ cost: 0 });
    // ...and priced again, it is charged on the next prediction.
    expect((await admin.api.patch(`/v1/models/${model.id}`, { price: 1 })).status).toBe(200);
    expect((await predict(model.id)).body).toMatchObject({ cost: 1, balance: before - 9 });
    await ledger.expectReconciled(user.id);
  });

  it('answers 404 for a retired model at once and hides it from users; reactivating brings it back', async () => {
    expect((await predict(model.id)).status).toBe(201); // cached and warm
    const before = await balanceOf(user.api);
    const entriesBefore = (await ledger.read(user.id)).entries.length;

    const retired = await admin.api.patch(`/v1/models/${model.id}`, { status: 'retired' });
    expect(retired.status).toBe(200);
    expect(retired.body.status).toBe('retired');

    expectProblem(await predict(model.id), 404, 'not-found');
    expectProblem(await predict(name), 404, 'not-found');
    expectProblem(await user.api.get(`/v1/models/${model.id}`), 404, 'not-found');
    expectProblem(await user.api.get(`/v1/models/${name}`), 404, 'not-found');
    expect((await listAll(user.api)).map((m) => m.id)).not.toContain(model.id);
    const adminView = await admin.api.get(`/v1/models/${model.id}`);
    expect(adminView.body.status).toBe('retired');
    expect((await listAll(admin.api)).map((m) => m.id)).toContain(model.id);
    expect(await balanceOf(user.api)).toBe(before);
    expect((await ledger.read(user.id)).entries.length).toBe(entriesBefore);

    const reactivated = await admin.api.patch(`/v1/models/${name}`, { status: 'active' });
    expect(reactivated.status, JSON.stringify(reactivated.body)).toBe(200);
    expect(reactivated.body).toMatchObject({ id: model.id, status: 'active' });
    const again = await predict(model.id);
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    expect(again.body).toMatchObject({ cost: 1, balance: before - 1 });
    expect((await predict(name)).body).toMatchObject({ modelId: model.id, balance: before - 2 });
    expect((await user.api.get(`/v1/models/${name}`)).body.id).toBe(model.id);
    await ledger.expectReconciled(user.id);
  });
});
