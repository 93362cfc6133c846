import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type FunctionName, functions } from '../../shared/api/functions.ts';
import { repositoryRoot } from './emulator.ts';

// biome-ignore lint/suspicious/noExplicitAny: handlers of different event types share this loader
type AnyHandler = (event: any, context: any) => Promise<any>;

const loaded = new Map<FunctionName, Promise<AnyHandler>>();

/** Imports a function's entry point once, like a warm Lambda container. */
export function loadHandler(name: FunctionName): Promise<AnyHandler> {
  let handler = loaded.get(name);
  if (!handler) {
    handler = import(pathToFileURL(join(repositoryRoot, functions[name].entry)).href).then((module) => {
      if (typeof module.handler !== 'function')
        throw new Error(`${functions[name].entry} exports no handler`);
      return module.handler as AnyHandler;
    });
    loaded.set(name, handler);
  }
  return handler;
}
