// The public surface of protocols/closures: fetching Nix closures from mesh peers.
export { ClosuresError, ClosureStoreError, WIRE_ERROR_CODES, type ClosuresErrorCode, type FetchAttempt } from './errors.js'
export type { ClosureStore, PathInfo } from './store.js'
export {
  CLOSURE_PROTOCOL, MAX_HEADER_BYTES, MAX_REQUEST_BYTES, frame, encodeRequest, decodeRequest, encodeHeader, decodeHeader,
  type ClosureRequest, type ClosureHeader
} from './codec.js'
export { ClosureService, type ClosureServiceOptions, type ClosuresLogger } from './service.js'
