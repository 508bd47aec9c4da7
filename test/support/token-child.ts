// Entry point of one child of test/support/token-children.ts; its config is in LATCHKEY_OAUTH_CHILD.
import { runChild, type ChildConfig } from './token-children.js';

await runChild(JSON.parse(process.env['LATCHKEY_OAUTH_CHILD'] ?? '{}') as ChildConfig);
