/**
 * The two references a service batch is compared with:
 * (a) the model alone: the rows, already parsed to numbers, run in the worker's chunks (tensor
 *     building included);
 * (b) a bare pipeline: the same file streamed from the emulator (GetObject), parsed by csv-parse
 *     with the worker's options, predicted in the same chunks through the same kind of runner, and
 *     the results streamed back to S3 (lib-storage Upload, the worker's part size and queue), with
 *     no queue, no billing, no checkpoints and no per-row validation.
 */
import { PassThrough, type Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { parse } from 'csv-parse';
import type { ModelRunner } from '../../shared/adapters/onnx-runtime.ts';
import type { OutputTensor } from '../../shared/domain/tensors.ts';

export interface PipelineRun {
  rows: number;
  ms: number;
  rowsPerSecond: number;
}

/** Runs the rows through the model chunk by chunk; returns the first output (labels) when asked. */
export async function rawModelRows(
  runner: ModelRunner,
  rows: number[][],
  width: number,
  chunkSize: number,
  keepLabels = false,
): Promise<PipelineRun & { labels?: number[] }> {
  const inputName = runner.inputs[0]?.name ?? 'input';
  const labels: number[] = [];
  const started = performance.now();
  for (let start = 0; start < rows.length; start += chunkSize) {
    const count = Math.min(chunkSize, rows.length - start);
    const data = new Float32Array(count * width);
    for (let r = 0; r < count; r++) data.set(rows[start + r] as number[], r * width);
    const outputs = await runner.run([{ name: inputName, type: 'float32', dims: [count, width], data }]);
    if (keepLabels) for (const value of Array.from(outputs[0]?.data ?? [])) labels.push(Number(value));
  }
  const ms = performance.now() - started;
  return {
    rows: rows.length,
    ms,
    rowsPerSecond: (rows.length / ms) * 1000,
    ...(keepLabels ? { labels } : {}),
  };
}

function rowSize(output: OutputTensor): number {
  return output.dims.slice(1).reduce((a, b) => a * b, 1);
}

/** One results line per row, `row,ok,<output values>,` like the service's CSV results. */
function resultLines(outputs: OutputTensor[], count: number, firstRow: number): string {
  let text = '';
  for (let r = 0; r < count; r++) {
    let line = `${firstRow + r},ok`;
    for (const output of outputs) {
      const size = rowSize(output);
      for (let k = 0; k < size; k++) line += `,${Number(output.data[r * size + k])}`;
    }
    text += `${line},\n`;
  }
  return text;
}

export async function barePipeline(options: {
  s3: S3Client;
  bucket: string;
  inputKey: string;
  outputKey: string;
  runner: ModelRunner;
  width: number;
  chunkSize: number;
}): Promise<PipelineRun> {
  const { s3, bucket, runner, width, chunkSize } = options;
  const inputName = runner.inputs[0]?.name ?? 'input';
  const started = performance.now();

  const output = new PassThrough();
  const upload = new Upload({
    client: s3,
    params: { Bucket: bucket, Key: options.outputKey, Body: output, ContentType: 'text/csv; charset=utf-8' },
    queueSize: 2,
    partSize: 5 * 1024 * 1024,
  });
  const uploaded = upload.done();
  let failure: unknown;
  uploaded.catch((error) => {
    failure = error;
  });
  const write = async (text: string) => {
    if (failure) throw failure;
    if (!output.write(text)) await new Promise<void>((resolve) => output.once('drain', resolve));
  };

  const { Body } = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: options.inputKey }));
  if (!Body) throw new Error(`s3://${bucket}/${options.inputKey} has no body`);
  const parser = (Body as Readable).pipe(
    parse({ bom: true, relax_column_count: true, skip_empty_lines: true, from_line: 2, trim: true }),
  );

  await write(`row,status,${runner.outputs.map((o) => o.name).join(',')},error\n`);
  let rows = 0;
  let chunk: string[][] = [];
  const flush = async () => {
    const count = chunk.length;
    const data = new Float32Array(count * width);
    for (let r = 0; r < count; r++) {
      const fields = chunk[r] as string[];
      for (let k = 0; k < width; k++) data[r * width + k] = Number(fields[k]);
    }
    const outputs = await runner.run([{ name: inputName, type: 'float32', dims: [count, width], data }]);
    await write(resultLines(outputs, count, rows + 1));
    rows += count;
    chunk = [];
  };
  for await (const fields of parser as AsyncIterable<string[]>) {
    chunk.push(fields);
    if (chunk.length >= chunkSize) await flush();
  }
  if (chunk.length > 0) await flush();
  output.end();
  await uploaded;
  const ms = performance.now() - started;
  return { rows, ms, rowsPerSecond: (rows / ms) * 1000 };
}
