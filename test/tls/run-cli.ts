// Runs the kernelchaos CLI from source (tests drive scripts and signals through it without a build).
import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
