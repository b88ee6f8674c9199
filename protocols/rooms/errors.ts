// Typed errors of rooms. `code` is stable: the service reports it as the reason a frame was
// dropped, the local API maps it to an HTTP status, and tests branch on it, never on the message.
import { RoomCipherError } from '../../crypto/errors.js'

export type RoomErrorCode =
  /** an entry body that breaks the schema of its kind */
  | 'ROOM_BODY_INVALID'
  /** a gossip frame or history message that is not strict, canonical CBOR of its schema */
  | 'ROOM_FRAME_MALFORMED'
  /** a gossip frame or history message over its size limit */
  | 'ROOM_FRAME_TOO_LARGE'
  /** no room with this id is known (yet) */
  | 'ROOM_UNKNOWN'
  /** a message names an epoch this host has not seen start */
  | 'ROOM_UNKNOWN_EPOCH'
  /** the signature does not verify under the key inside the claimed sender's peer id */
  | 'ROOM_BAD_SIGNATURE'
  /** the sending host or agent is not a member of the room in the message's epoch */
  | 'ROOM_NOT_MEMBER'
  /** a live message of an epoch this host saw end longer than the grace ago (epoch-ends.ts) */
  | 'ROOM_STALE_EPOCH'
  /** a (sender, seq) already received, or older than what history still keeps */
  | 'ROOM_REPLAY'
  /** this host holds no key for the epoch (it was not a member then) */
  | 'ROOM_NO_KEY'
  /** the ciphertext does not authenticate under the epoch key */
  | 'ROOM_MSG_AUTH_FAILED'
  /** the caller may not change this room's membership */
  | 'ROOM_NOT_AUTHORISED'
  /** the current epoch key reached a host that is no longer a member; sending waits for a rekey */
  | 'ROOM_REKEY_PENDING'
  /** a host that is not a mesh member, or whose X-Wing key is unknown */
  | 'ROOM_HOST_UNKNOWN'
  /** more member hosts than one entry can carry keys for */
  | 'ROOM_TOO_MANY_HOSTS'
  /** a request that breaks the API's schema */
  | 'ROOM_BAD_REQUEST'
  /** a peer past its size or rate budget for room frames or history (budgets.ts) */
  | 'ROOM_OVER_BUDGET'
  /** a history fetch that the remote refused or that failed */
  | 'ROOM_HISTORY_FAILED'

export class RoomError extends Error {
  override readonly name = 'RoomError'
  constructor (readonly code: RoomErrorCode, message: string) {
    super(message)
  }
}

export function isRoomError (err: unknown, code?: RoomErrorCode): err is RoomError {
  return err instanceof RoomError && (code === undefined || err.code === code)
}

/** A room error for anything a frame, its decryption or an exchange threw; cipher errors keep their meaning. */
export function asRoomError (err: unknown): RoomError {
  if (err instanceof RoomError) return err
  if (err instanceof RoomCipherError) {
    return new RoomError(err.code === 'ROOM_MSG_AUTH_FAILED' ? 'ROOM_MSG_AUTH_FAILED' : err.code === 'ROOM_MSG_TOO_LARGE' ? 'ROOM_FRAME_TOO_LARGE' : 'ROOM_FRAME_MALFORMED', err.message)
  }
  return new RoomError('ROOM_HISTORY_FAILED', (err as Error)?.message ?? String(err))
}
