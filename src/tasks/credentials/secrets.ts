import { z } from 'zod';
import { defineObjectType } from '../../objects/index.js';

/**
 * A task's credential secrets, one object per task (its id is the task's). The API key and the
 * external secret are encrypted; what the task runs as and which credentials it holds are in the
 * AAD, so a task row edited to run as someone else no longer matches its secrets, and a
 * ciphertext moved to another task does not decrypt.
 */
export const TASK_SECRETS_TYPE = defineObjectType({
  name: 'task_secrets',
  versions: [
    {
      version: 1,
      schema: z.object({
        /** JSON of the task's RunAs. */
        runAs: z.string().min(1),
        nativeKeyId: z.string().min(1),
        nativeKey: z.string().min(1),
        externalReference: z.string().nullable(),
        externalSecret: z.string().min(1).optional(),
        externalExpiresAt: z.string().nullable(),
      }),
      attributesToEncrypt: ['nativeKey', 'externalSecret'],
      attributesToIncludeInAAD: ['runAs', 'nativeKeyId', 'externalReference'],
    },
  ],
});
