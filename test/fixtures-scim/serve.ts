/**
 * Serves a SCIM endpoint on a fresh database until SIGINT/SIGTERM, for the conformance run
 * (scripts/scim-conformance.sh): prints one JSON line {"baseUrl", "token"} when ready.
 */
import { once } from 'node:events';
import { startScimStack } from './stack.ts';

const stack = await startScimStack();
console.log(JSON.stringify({ baseUrl: stack.baseUrl, token: stack.token }));
await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
await stack.close();
