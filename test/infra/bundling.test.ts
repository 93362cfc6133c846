/**
 * The one test that bundles for real: esbuild for every function and the onnxruntime layer assembled
 * from node_modules, as `cdk synth` does before a deploy. The other infra tests skip bundling.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/app.ts';
import { functionNames, functions } from '../../shared/api/functions.ts';

/** Lambda's limit on a function's code and all its layers, unzipped. */
const LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024;

function sizeOf(path: string): number {
  const stats = statSync(path);
  if (!stats.isDirectory()) return stats.size;
  return readdirSync(path).reduce((total, entry) => total + sizeOf(join(path, entry)), 0);
}

function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const relativePath = prefix ? `${prefix}/${entry.name}` : entry.name;
    return entry.isDirectory() ? [relativePath, ...filesUnder(dir, relativePath)] : [relativePath];
  });
}

interface TemplateResource {
  Type: string;
  Properties: { Description?: string; Code?: { S3Key: string }; Content?: { S3Key: string } };
}

interface AssetManifest {
  files: Record<string, { source: { path: string }; destinations: Record<string, { objectKey: string }> }>;
}

describe('bundling the stateless stack for real', () => {
  it('ships index.mjs per function, Swagger UI next to the public one, and a linux-x64-only onnxruntime layer under 250 MB', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'credit-predictions-bundling-'));
    try {
      const { app, stateless } = buildApp({ context: { stage: 'dev' }, outdir });
      const assembly = app.synth();
      const artifact = assembly.getStackArtifact(stateless.artifactId);
      const resources = Object.values(
        (artifact.template as { Resources: Record<string, TemplateResource> }).Resources,
      );

      // Each S3 object key of the template comes from one staged asset directory of the assembly.
      const manifestFile = join(outdir, `${stateless.artifactId}.assets.json`);
      const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as AssetManifest;
      const assetDirByKey = new Map(
        Object.values(manifest.files).flatMap((file) =>
          Object.values(file.destinations).map((d) => [d.objectKey, join(outdir, file.source.path)] as const),
        ),
      );
      const assetDir = (objectKey: string | undefined) => {
        const dir = objectKey === undefined ? undefined : assetDirByKey.get(objectKey);
        if (!dir || !existsSync(dir)) throw new Error(`No staged asset for ${objectKey}.`);
        return dir;
      };

      const layers = resources.filter((r) => r.Type === 'AWS::Lambda::LayerVersion');
      expect(layers).toHaveLength(1);
      const layerDir = assetDir(layers[0]?.Properties.Content?.S3Key);
      const onnxNode = join(layerDir, 'nodejs/node_modules/onnxruntime-node');
      expect(existsSync(join(onnxNode, 'bin/napi-v6/linux/x64/onnxruntime_binding.node'))).toBe(true);
      expect(existsSync(join(layerDir, 'nodejs/node_modules/onnxruntime-common/package.json'))).toBe(true);
      const binaryDirs = filesUnder(join(onnxNode, 'bin/napi-v6')).filter(
        (path) => path.split('/').length === 2,
      );
      expect(binaryDirs).toEqual(['linux/x64']);
      const layerBytes = sizeOf(layerDir);

      for (const name of functionNames) {
        const fn = resources.find(
          (r) =>
            r.Type === 'AWS::Lambda::Function' && r.Properties.Description === functions[name].description,
        );
        const codeDir = assetDir(fn?.Properties.Code?.S3Key);
        const files = filesUnder(codeDir);
        expect(files, name).toContain('index.mjs');
        expect(readFileSync(join(codeDir, 'index.mjs'), 'utf8'), name).toMatch(/^import \{ createRequire/);
        if (name === 'public') {
          expect(files).toEqual(
            expect.arrayContaining(['swagger-ui/swagger-ui-bundle.js', 'swagger-ui/swagger-ui.css']),
          );
        }
        const unzipped = sizeOf(codeDir) + (functions[name].usesOnnxRuntime ? layerBytes : 0);
        expect(unzipped, name).toBeLessThan(LAMBDA_UNZIPPED_LIMIT_BYTES);
      }
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
    // Eleven esbuild runs and the layer: about a minute alone, more beside the other infra files.
  }, 240_000);
});
