/**
 * The local runtime runs what Lambda runs: each function bundled by esbuild into one ES module (the
 * stateless stack's options, minus minification), plus the container bootstrap. Bundles are cached
 * in `.cache/local-functions/<hash of the sources>`, so a test run or `npm run dev` bundles once and
 * every later start reuses them until a source file changes.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { functionNames, functions } from '../../shared/api/functions.ts';
import { repositoryRoot } from './emulator.ts';

const CACHE = join(repositoryRoot, '.cache', 'local-functions');
const SOURCE_ROOTS = ['shared', 'functions', join('infra', 'local', 'lambda-container.ts')];
const CONTAINER = '__container';
/** As in the stateless stack: ES module output still meets CommonJS code that calls `require`. */
const REQUIRE_BANNER =
  "import { createRequire as __bannerCreateRequire } from 'node:module'; const require = __bannerCreateRequire(import.meta.url);";

export interface FunctionBundles {
  directory: string;
  /** The bootstrap every container starts with (see lambda-container.ts). */
  container: string;
  entry(name: string): string;
}

async function sourceFiles(path: string): Promise<string[]> {
  const absolute = join(repositoryRoot, path);
  if (!(await readdir(absolute).catch(() => undefined))) return [absolute];
  const entries = await readdir(absolute, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && /\.(ts|json)$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name));
}

/** A digest of everything a bundle is made of: the sources and the locked dependency versions. */
async function sourceDigest(): Promise<string> {
  const hash = createHash('sha256');
  const files = (await Promise.all(SOURCE_ROOTS.map(sourceFiles))).flat().sort();
  for (const file of [...files, join(repositoryRoot, 'package-lock.json')]) {
    hash.update(relative(repositoryRoot, file));
    hash.update(await readFile(file));
  }
  return hash.digest('hex').slice(0, 16);
}

let pending: Promise<FunctionBundles> | undefined;

/** Bundles every function (or finds the bundles of these sources in the cache). */
export function functionBundles(log: (line: string) => void = () => {}): Promise<FunctionBundles> {
  pending ??= bundleAll(log).catch((error) => {
    pending = undefined;
    throw error;
  });
  return pending;
}

async function bundleAll(log: (line: string) => void): Promise<FunctionBundles> {
  const directory = join(CACHE, await sourceDigest());
  const bundles: FunctionBundles = {
    directory,
    container: join(directory, CONTAINER, 'index.mjs'),
    entry: (name) => join(directory, name, 'index.mjs'),
  };
  if (existsSync(bundles.container)) {
    // Marks the bundles as in use, so another run's pruning leaves them alone.
    const now = new Date();
    await utimes(directory, now, now).catch(() => {});
    return bundles;
  }

  const started = performance.now();
  // Several test workers may bundle at once: each writes its own directory and renames it into
  // place; whoever comes second throws its copy away.
  const staging = `${directory}.${process.pid}.${Date.now()}`;
  await mkdir(CACHE, { recursive: true });
  try {
    await bundleFunctions(
      Object.fromEntries(functionNames.map((name) => [name, join(repositoryRoot, functions[name].entry)])),
      staging,
    );
    await rename(staging, directory).catch(async (error: NodeJS.ErrnoException) => {
      if (!existsSync(bundles.container)) throw error;
      await rm(staging, { recursive: true, force: true });
    });
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  log(`functions bundled in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  await pruneOldBundles(directory);
  return bundles;
}

/**
 * Bundles the given entry points (name -> source file), and the container bootstrap, into `outdir`
 * as `<name>/index.mjs`. The tests bundle small fixture functions with it.
 */
export async function bundleFunctions(
  entries: Record<string, string>,
  outdir: string,
): Promise<FunctionBundles> {
  await build({
    entryPoints: {
      ...Object.fromEntries(Object.entries(entries).map(([name, file]) => [`${name}/index`, file])),
      [`${CONTAINER}/index`]: join(repositoryRoot, 'infra', 'local', 'lambda-container.ts'),
    },
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    mainFields: ['module', 'main'],
    banner: { js: REQUIRE_BANNER },
    external: ['onnxruntime-node'],
    sourcemap: 'linked',
    sourcesContent: false,
    logLevel: 'silent',
  });
  return {
    directory: outdir,
    container: join(outdir, CONTAINER, 'index.mjs'),
    entry: (name) => join(outdir, name, 'index.mjs'),
  };
}

/**
 * Keeps the cache from growing with every edit. Another run in this working tree (a test worker,
 * the bench, `npm run dev`) may still use an older bundle, so only bundles unused for a day go,
 * and the newest few always stay.
 */
async function pruneOldBundles(current: string): Promise<void> {
  const entries = await readdir(CACHE, { withFileTypes: true });
  const dirs = await Promise.all(
    entries
      .filter((entry) => entry.isDirectory() && /^[0-9a-f]{16}$/.test(entry.name))
      .map(async (entry) => {
        const path = join(CACHE, entry.name);
        return { path, mtime: (await stat(path)).mtimeMs };
      }),
  );
  const dayAgo = Date.now() - 86_400_000;
  const stale = dirs
    .filter((dir) => dir.path !== current)
    .sort((a, b) => b.mtime - a.mtime)
    .slice(3)
    .filter((dir) => dir.mtime < dayAgo);
  await Promise.all(stale.map((dir) => rm(dir.path, { recursive: true, force: true })));
}
