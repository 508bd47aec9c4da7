import type { components } from './openapi.js';

/**
 * The API's named schemas, to name what a method answers.
 *
 * @example
 * const show = (connector: Schemas['Connector']) => `${connector.name} (${connector.provider})`;
 */
export type Schemas = components['schemas'];
