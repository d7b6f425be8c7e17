// Worker bootstrap: worker threads do not inherit the test runner's TypeScript loader, so
// register tsx's here and then load the worker itself.
import { register } from 'tsx/esm/api';

register();
await import('./fuzz-worker.ts');
