/** Paths the infrastructure code resolves against: entries in the function list are repo-relative. */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: where package.json, package-lock.json and node_modules live. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
