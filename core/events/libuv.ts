import { koffi } from '../native/libc.js';

/**
 * Node's own libuv, reached through koffi.load(null) (the running node binary exports
 * the uv_* symbols). Only the poll-handle calls the EventLoop needs are declared.
 * SAFETY: a uv_poll_t is raw memory we allocate with koffi.alloc; libuv owns it from
 * uv_poll_init until our close callback runs, and only then may it be freed.
 */
const self = koffi.load(null);

export const UV_READABLE = 1;
export const UV_WRITABLE = 2;
const UV_POLL = 8; // uv_handle_type

export const PollCb = koffi.proto('void tsvmm_uv_poll_cb(void *handle, int status, int events)');
export const CloseCb = koffi.proto('void tsvmm_uv_close_cb(void *handle)');

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

export const allocHandle = (): bigint => koffi.alloc('uint8_t', UV_POLL_SIZE) as bigint;
export const freeHandle = (h: bigint): void => koffi.free(h);
export const addressOfPointer = (p: unknown): bigint => (typeof p === 'bigint' ? p : koffi.address(p));
export const registerCallback = (fn: (...args: never[]) => void, proto: unknown): bigint =>
  koffi.register(fn as (...args: unknown[]) => unknown, koffi.pointer(proto as never)) as bigint;
