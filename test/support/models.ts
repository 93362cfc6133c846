/** Publishing model versions over HTTP as an admin: create, PUT the file to the presigned URL, await validation. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Api } from './api.ts';

export const MODELS_DIRECTORY = fileURLToPath(new URL('../../models/', import.meta.url));

/** A file under models/, e.g. `iris/model.onnx` or `fixtures/corrupt.onnx`. */
export async function modelFile(path: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(join(MODELS_DIRECTORY, path)));
}

export interface PublishedModel {
  /** The model as the create call answered (status `pending_upload`). */
  created: any;
  /** The model once the validator has decided (status `active` or `invalid`). */
  model: any;
}

/** Starts a version with `POST /v1/models`; throws unless 201. */
export async function createModel(
  admin: Api,
  input: { name: string; description?: string; price: number; size?: number; checksumSha256?: string },
) {
  const response = await admin.post('/v1/models', { description: '', ...input });
  if (response.status !== 201)
    throw new Error(`POST /v1/models: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as {
    model: any;
    upload: { url: string; method: 'PUT'; headers: Record<string, string> };
  };
}

/** PUTs bytes to a presigned upload; throws unless S3 accepted them. */
export async function putUpload(
  upload: { url: string; method: string; headers: Record<string, string> },
  bytes: Uint8Array,
): Promise<void> {
  const response = await fetch(upload.url, { method: upload.method, headers: upload.headers, body: bytes });
  if (!response.ok) throw new Error(`upload PUT: ${response.status} ${await response.text()}`);
}

/** Polls `GET /v1/models/{id}` (as an admin) until the version is no longer `pending_upload`. */
export async function awaitValidation(admin: Api, modelId: string, timeoutMs = 45_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await admin.get(`/v1/models/${modelId}`);
    if (response.status !== 200)
      throw new Error(`GET /v1/models/${modelId}: ${response.status} ${JSON.stringify(response.body)}`);
    if (response.body.status !== 'pending_upload') return response.body;
    if (Date.now() > deadline) throw new Error(`model ${modelId} was still pending after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Creates a version, uploads its file and waits until the validator has decided. */
export async function publishModel(
  admin: Api,
  input: { name: string; description?: string; price: number },
  bytes: Uint8Array,
): Promise<PublishedModel> {
  const { model: created, upload } = await createModel(admin, input);
  await putUpload(upload, bytes);
  return { created, model: await awaitValidation(admin, created.id) };
}
