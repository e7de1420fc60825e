import { ADDRESS_FORMS, parseListenAddress, type ListenAddress } from '../node/address.js';
import { HttpAppError } from './errors.js';

/**
 * The HTTP app's reading of a listen address (see `parseListenAddress`): throws an
 * `HttpAppError` `HTTP_ERR_BAD_ADDRESS` for anything it cannot listen on.
 */
export function parseAddress(address: string | number): ListenAddress {
  const parsed = parseListenAddress(address);
  if (parsed === undefined) {
    throw new HttpAppError('HTTP_ERR_BAD_ADDRESS', `Cannot listen on ${JSON.stringify(address)}: expected ${ADDRESS_FORMS}`);
  }
  return parsed;
}
