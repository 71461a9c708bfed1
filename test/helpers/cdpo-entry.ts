/**
 * Runs the cdpo CLI in a child process from tests: `node dist/test/helpers/cdpo-entry.js ARGS`
 * when compiled, `node --import tsx test/helpers/cdpo-entry.ts ARGS` under tsx (see cli.ts).
 */
import { main } from "../../src/cli/main.js";

await main(process.argv);
