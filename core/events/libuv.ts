import { koffi } from '../native/libc.js';

/**
 * Node's own libuv, reached through koffi.load(null) (the running node binary exports
 * the uv_* symbols). Only the poll-handle calls the EventLoop needs are declared.
 * SAFETY: a uv_poll_t is raw memory we allocate with koffi.alloc; libuv owns it from
 * uv_poll_init until our close callback runs, and only then may it be freed.
 */
const self = koffi.load(null);

/** uv_poll_start event bit: the fd is readable. */
export const UV_READABLE = 1;
/** uv_poll_start event bit: the fd is writable. */
export const UV_WRITABLE = 2;
const UV_POLL = 8; // uv_handle_type

/** koffi prototype of libuv's uv_poll_cb (handle, status: 0 or a negative libuv error, events: UV_* bits). */
export const PollCb = koffi.proto('void tsvmm_uv_poll_cb(void *handle, int status, int events)');
/** koffi prototype of libuv's uv_close_cb (called once libuv no longer uses the handle). */
export const CloseCb = koffi.proto('void tsvmm_uv_close_cb(void *handle)');

/**
 * The libuv calls UvEventLoop uses, bound in the running node binary. They run on the main thread only, on Node's
 * default loop; return values are libuv's (0, or a negative error that `strerror` names).
 */
export const uv = {
  defaultLoop: self.func('void *uv_default_loop()') as () => bigint,
  pollInit: self.func('int uv_poll_init(void *loop, void *handle, int fd)') as (
    loop: bigint,
    handle: bigint,
    fd: number,
  ) => number,
  pollStart: self.func('int uv_poll_start(void *handle, int events, void *cb)') as (
    handle: bigint,
    events: number,
    cb: bigint,
  ) => number,
  pollStop: self.func('int uv_poll_stop(void *handle)') as (handle: bigint) => number,
  close: self.func('void uv_close(void *handle, void *cb)') as (handle: bigint, cb: bigint) => void,
  strerror: self.func('const char *uv_strerror(int err)') as (err: number) => string,
};

/** sizeof(uv_poll_t): from uv_handle_size when exported, else a safe upper bound. */
export const UV_POLL_SIZE: number = (() => {
  try {
    const f = self.func('size_t uv_handle_size(int type)') as (t: number) => number | bigint;
    const n = Number(f(UV_POLL));
    return n > 0 && n <= 4096 ? n : 256;
  } catch {
    return 256;
  }
})();

/**
 * Allocates UV_POLL_SIZE bytes of native memory for one uv_poll_t; free it with freeHandle (after libuv's close
 * callback once uv_poll_init succeeded, at once otherwise).
 */
export const allocHandle = (): bigint => koffi.alloc('uint8_t', UV_POLL_SIZE) as bigint;
/** Frees a handle from allocHandle (see the SAFETY note above for when that is allowed). */
export const freeHandle = (h: bigint): void => koffi.free(h);
/** The numeric address of a pointer koffi hands to a callback (koffi gives an opaque object or already a bigint). */
export const addressOfPointer = (p: unknown): bigint => (typeof p === 'bigint' ? p : koffi.address(p));
/**
 * Registers a JS function as a native callback of prototype `proto` and returns its address for libuv. The registration
 * is never released: UvEventLoop registers each callback once per process.
 */
export const registerCallback = (fn: (...args: never[]) => void, proto: unknown): bigint =>
  koffi.register(fn as (...args: unknown[]) => unknown, koffi.pointer(proto as never)) as bigint;
