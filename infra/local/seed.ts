/** Registers the demo models shipped in models/ on first local start (skipped when already there). */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repositoryRoot } from './emulator.ts';

interface DemoMetadata {
  name: string;
  description: string;
  price: number;
}

export const DEMO_MODELS = ['iris', 'breast-cancer', 'diabetes', 'digits'] as const;

export async function seedDemoModels(): Promise<{ name: string; id: string; price: number }[]> {
  const { services } = await import('../../shared/app/services.ts');
  const directory = join(repositoryRoot, 'models');
  const present = new Set(await readdir(directory));
  const seeded = [];
  for (const name of DEMO_MODELS) {
    if (!present.has(name))
      throw new Error(`The demo model ${name} is missing from models/ (run models/train.py)`);
    const metadata = JSON.parse(
      await readFile(join(directory, name, 'metadata.json'), 'utf8'),
    ) as DemoMetadata;
    const bytes = new Uint8Array(await readFile(join(directory, name, 'model.onnx')));
    const model = await services().models.registerBundled({
      name: metadata.name,
      description: metadata.description,
      price: metadata.price,
      bytes,
    });
    seeded.push({ name: model.name, id: model.id, price: model.price });
  }
  return seeded;
}
