/**
 * `compose` lives in @taskmesh/common (packages/common/src/compose.ts); this re-exports it typed
 * for the worker's TaskContext, so `import { compose } from '@taskmesh/worker'` keeps working.
 */
import { compose as composeSteps, type ComposeOptions, type ComposeStep as Step } from '@taskmesh/common';

import type { TaskContext } from './context';
import type { TaskFunction } from './worker';

export type ComposeStep = Step<TaskContext>;
export { ComposeStepError, type ComposeOptions } from '@taskmesh/common';

export function compose(steps: readonly ComposeStep[], opts?: ComposeOptions): TaskFunction<unknown> {
  return composeSteps<TaskContext>(steps, opts);
}
