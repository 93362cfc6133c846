/**
 * The Lambda layer that carries onnxruntime-node, assembled at synth time from the installed package.
 *
 * The npm package holds every platform's binaries (about 288 MB unpacked, over Lambda's 250 MB limit
 * for a function and its layers), so only the one directory of native binaries the functions' CPU
 * architecture loads is copied. `NodejsFunction`'s `nodeModules` is not used: it would run
 * `npm install` (network access, a CUDA download) at every synth.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { AssetHashType, DockerImage, type ILocalBundling } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { REPO_ROOT } from './paths.ts';

/** The runtime every function and the layer are built for. */
export const FUNCTION_RUNTIME = lambda.Runtime.NODEJS_24_X;

/** Where Node.js functions find a layer's packages (on `NODE_PATH`, and for ES module imports). */
const LAYER_MODULES_DIR = join('nodejs', 'node_modules');

/** Bump when the way the layer is assembled changes, so a cached asset is not reused. */
const RECIPE_VERSION = 1;

/** onnxruntime-node's directory of native binaries for Linux on the given CPU architecture. */
export function onnxBinaryDir(architecture: lambda.Architecture): string {
  const cpu = architecture === lambda.Architecture.ARM_64 ? 'arm64' : 'x64';
  return join('bin', 'napi-v6', 'linux', cpu);
}

/** The directory of an installed package, found the way Node.js resolves it from `fromDir`. */
export function installedPackageDir(name: string, fromDir: string): string {
  const entry = createRequire(join(fromDir, 'package.json')).resolve(name);
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === name) return dir;
  }
  throw new Error(`Cannot find the package directory of ${name} (resolved to ${entry}).`);
}

/** Copies the two packages into `nodejs/node_modules/`, keeping one platform's binaries only. */
class CopyInstalledOnnxRuntime implements ILocalBundling {
  constructor(
    private readonly nodePackageDir: string,
    private readonly commonPackageDir: string,
    private readonly keptBinaryDir: string,
  ) {}

  tryBundle(outputDir: string): boolean {
    const modules = join(outputDir, LAYER_MODULES_DIR);
    mkdirSync(modules, { recursive: true });
    cpSync(this.commonPackageDir, join(modules, 'onnxruntime-common'), {
      recursive: true,
      dereference: true,
    });
    cpSync(this.nodePackageDir, join(modules, 'onnxruntime-node'), {
      recursive: true,
      dereference: true,
      filter: (source) => this.keeps(relative(this.nodePackageDir, source)),
    });
    if (!existsSync(join(modules, 'onnxruntime-node', this.keptBinaryDir, 'onnxruntime_binding.node'))) {
      throw new Error(`The installed onnxruntime-node has no ${this.keptBinaryDir} binaries.`);
    }
    return true;
  }

  /** Everything but `bin/`, and within `bin/` only the kept directory (and the directories above it). */
  private keeps(path: string): boolean {
    const parts = path.split(sep);
    if (parts[0] !== 'bin') return true;
    const kept = this.keptBinaryDir.split(sep);
    const prefix = Math.min(parts.length, kept.length);
    return parts.slice(0, prefix).join(sep) === kept.slice(0, prefix).join(sep);
  }
}

/**
 * A cheap, deterministic hash of what goes into the layer: the two installed versions, the names and
 * sizes of the kept binaries and the recipe. Fingerprinting the whole 288 MB source would cost seconds
 * at every synth, including the ones that skip bundling.
 */
function layerAssetHash(nodePackageDir: string, commonPackageDir: string, keptBinaryDir: string): string {
  const hash = createHash('sha256');
  hash.update(`recipe ${RECIPE_VERSION}\n`);
  for (const dir of [nodePackageDir, commonPackageDir]) hash.update(readFileSync(join(dir, 'package.json')));
  const binaries = join(nodePackageDir, keptBinaryDir);
  for (const file of readdirSync(binaries).sort())
    hash.update(`${file} ${statSync(join(binaries, file)).size}\n`);
  return hash.digest('hex');
}

export interface OnnxRuntimeLayerProps {
  architecture: lambda.Architecture;
}

export function onnxRuntimeLayer(scope: Construct, id: string, props: OnnxRuntimeLayerProps) {
  const nodePackageDir = installedPackageDir('onnxruntime-node', REPO_ROOT);
  const commonPackageDir = installedPackageDir('onnxruntime-common', nodePackageDir);
  const keptBinaryDir = onnxBinaryDir(props.architecture);
  const { version } = JSON.parse(readFileSync(join(nodePackageDir, 'package.json'), 'utf8')) as {
    version: string;
  };
  return new lambda.LayerVersion(scope, id, {
    description: `onnxruntime-node ${version}, ${keptBinaryDir.split(sep).slice(-2).join('-')} binaries only`,
    compatibleRuntimes: [FUNCTION_RUNTIME],
    compatibleArchitectures: [props.architecture],
    license: 'MIT',
    code: lambda.Code.fromAsset(nodePackageDir, {
      assetHashType: AssetHashType.CUSTOM,
      assetHash: layerAssetHash(nodePackageDir, commonPackageDir, keptBinaryDir),
      bundling: {
        // Never used: the local copy always succeeds or throws, and needs no container.
        image: DockerImage.fromRegistry('dummy'),
        local: new CopyInstalledOnnxRuntime(nodePackageDir, commonPackageDir, keptBinaryDir),
      },
    }),
  });
}
