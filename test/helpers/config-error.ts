// What a configuration mistake says: the one-line message of the GW_ERR_CONFIG error `fn`
// throws. Any other error is rethrown; no error at all fails the test.
import { isGatewayError } from '../../src/errors.js';

export function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isGatewayError(err) && err.code === 'GW_ERR_CONFIG') return err.message;
    throw err;
  }
  throw new Error('no configuration error');
}
