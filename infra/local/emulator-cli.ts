/** `npm run emulator:install`: installs the pinned local AWS emulator ahead of time (CI does). */
import { ensureEmulatorInstalled } from './emulator.ts';

const command = process.argv[2];
if (command !== 'install') {
  console.error('usage: emulator-cli.ts install');
  process.exit(2);
}
await ensureEmulatorInstalled((line) => console.log(line));
console.log('The local AWS emulator is installed.');
