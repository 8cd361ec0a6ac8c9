import { VmmError } from '../../core/errors.js';

/** Why an API request failed; each kind has its HTTP status (statusOf). */
export type ApiErrorKind =
  | 'BadRequest'
  | 'NotFound'
  | 'NotCreated'
  | 'InvalidState'
  | 'AlreadyExists'
  | 'Unsupported'
  | 'TooLarge'
  | 'HeadersTooLarge'
  | 'Timeout'
  | 'TooManyRequests'
  | 'Failed';

const STATUS: Record<ApiErrorKind, number> = {
  BadRequest: 400,
  NotFound: 404,
  NotCreated: 404,
  InvalidState: 405,
  AlreadyExists: 409,
  Unsupported: 500,
  TooLarge: 413,
  HeadersTooLarge: 431,
  Timeout: 408,
  TooManyRequests: 429,
  Failed: 500,
};

/** The first line of Cloud Hypervisor's error body for each kind (its HttpError's text, where it has one). */
const HEADLINE: Record<ApiErrorKind, string> = {
  BadRequest: 'Bad Request',
  NotFound: 'Not Found',
  NotCreated: 'Error from API',
  InvalidState: 'Error from API',
  AlreadyExists: 'Error from API',
  Unsupported: 'Error from API',
  TooLarge: 'Payload Too Large',
  HeadersTooLarge: 'Request Header Fields Too Large',
  Timeout: 'Request Timeout',
  TooManyRequests: 'Too Many Requests',
  Failed: 'Error from API',
};

/**
 * A failed API request. Answered in Cloud Hypervisor's error shape: the status of its kind and a JSON array of
 * strings, from the general to the particular (`["Error from API", "the VM is not created"]`).
 */
export class ApiError extends VmmError<ApiErrorKind> {
  /** The HTTP status this error is answered with. */
  get status(): number {
    return STATUS[this.kind];
  }
  /** The JSON body: Cloud Hypervisor's array of messages. */
  body(): string[] {
    return [this.headline ?? HEADLINE[this.kind], this.message];
  }
  constructor(
    kind: ApiErrorKind,
    message: string,
    /** Replaces the kind's usual first line (e.g. 'Failed to deserialize JSON'). */
    readonly headline?: string,
    options?: { cause?: unknown },
  ) {
    super(kind, message, {}, options);
  }
}

/** Any thrown value as an ApiError: ApiErrors as they are, anything else a 500 carrying its one-line message. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError('Failed', (err as Error)?.message ?? String(err), undefined, { cause: err });
}

/** The status and body of an error answer (for the few places that write raw HTTP). */
export function errorAnswer(err: ApiError): { status: number; body: string } {
  return { status: err.status, body: JSON.stringify(err.body()) };
}
