// Entry point of the `tokenmill` CLI (bin/tokenmill.js imports it): run the command line, then exit
// with its code even if a worker thread or native pool still holds the event loop open. The
// subcommand table is COMMANDS in program.ts (one line per subcommand).
import { runCli } from './program.js';

const code = await runCli(process.argv);
const exit = (): never => process.exit(code);
if (process.stdout.writableLength > 0) process.stdout.once('drain', exit);
else exit();
